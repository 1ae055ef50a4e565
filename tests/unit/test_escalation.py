"""Escalator on a real (in-memory SQLite) store: a check costs the events journaled since
the last one, not the open windows, and decides as the per-window scan did: an alarm from
before the first check is escalated, an acknowledged one is not, a closed window never."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Collection
from typing import Any, cast

import pytest

from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.lifecycle import escalation
from watchdog.lifecycle.escalation import EscalationStore, Escalator
from watchdog.store.journal import Journal
from watchdog.store.sqlite import MEMORY, SqliteStore

AFTER = 300.0


class Counting:
    """The real store, counting the calls made to it by method name."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()
        self.hidden: set[int] = set()  # seqs not committed yet (PostgreSQL commits late)

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.store, name)

    async def list_events_after(
        self, after_seq: int, *, kinds: Collection[EventKind], limit: int
    ) -> list[Event]:
        self.calls["list_events_after"] += 1
        found = await self.store.list_events_after(after_seq, kinds=kinds, limit=limit)
        return [e for e in found if e.seq not in self.hidden]


class World:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.counting = Counting(store)
        self.clock = FakeClock()
        self.journal = Journal(store)
        self.escalator = self.started()

    def started(self) -> Escalator:
        """A new escalator (a replica that just started, or just became the leader)."""
        store = cast(EscalationStore, self.counting)
        return Escalator(store, self.journal, self.clock, AFTER)

    async def open(self, wid: str) -> Window:
        d = Deployment("api", "prod", "v2", previous_version="v1")
        now = self.clock.now()
        w = Window(wid, d, WindowPhase.WATCHING, now, now + 3600, now)
        await self.store.insert_window(w)
        await self.journal.record(w, EventKind.WINDOW_OPENED, "opened", at=now)
        return w

    async def fire(self, w: Window, severity: str = "critical") -> Event:
        return await self.journal.record(
            w, EventKind.RULE_FIRING, "oom", at=self.clock.now(), rule="oom",
            data={"severity": severity},
        )  # fmt: skip

    async def ack(self, w: Window) -> Event:
        return await self.journal.record(w, EventKind.ACKNOWLEDGED, "on it", at=self.clock.now())

    async def escalated(self, w: Window) -> list[Event]:
        events = await self.store.list_events(w.id)
        return [e for e in events if e.kind is EventKind.ESCALATED]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = SqliteStore(MEMORY)
    await store.open()
    yield World(store)
    await store.close()


async def test_a_check_with_nothing_new_reads_the_store_once_however_many_open(
    world: World,
) -> None:
    for i in range(100):
        w = await world.open(f"w{i}")
        await world.fire(w, severity="warning")
        if i % 10 == 0:
            await world.fire(w)
            await world.ack(w)
        if i % 25 == 1:
            await world.fire(w)  # pending, not overdue yet
    assert await world.escalator.check() == 0
    for _ in range(3):
        world.counting.calls.clear()
        world.clock.advance(1)
        assert await world.escalator.check() == 0
        assert world.counting.calls == {"list_events_after": 1}


async def test_an_alarm_raised_before_the_first_check_is_escalated_once(world: World) -> None:
    w = await world.open("w")
    quiet = await world.open("quiet")
    await world.fire(quiet, severity="warning")
    alarm = await world.fire(w)
    closed = await world.open("closed")
    await world.fire(closed)
    await world.store.set_phase("closed", WindowPhase.PASSED, at=world.clock.now())
    world.clock.advance(AFTER)
    escalator = world.started()
    assert await escalator.check() == 1
    [escalated] = await world.escalated(w)
    assert escalated.message == "oom went unacknowledged for 300s: escalating"
    assert escalated.data == {"severity": "critical", "alarm_seq": alarm.seq}
    assert (escalated.rule, escalated.at) == ("oom", world.clock.now())
    world.clock.advance(AFTER)
    assert await escalator.check() == 0
    assert await world.started().check() == 0  # a new leader reads the escalation
    assert await world.escalated(quiet) == await world.escalated(closed) == []


async def test_an_acknowledged_alarm_is_not_escalated(world: World) -> None:
    before = await world.open("before")
    await world.fire(before)
    await world.ack(before)
    assert await world.escalator.check() == 0
    after = await world.open("after")
    await world.fire(after)
    await world.ack(after)
    unacked = await world.open("unacked")
    await world.fire(unacked)
    world.clock.advance(1)
    assert await world.escalator.check() == 0
    world.clock.advance(AFTER)
    assert await world.escalator.check() == 1
    assert await world.escalated(before) == await world.escalated(after) == []
    assert len(await world.escalated(unacked)) == 1


async def test_an_alarm_of_a_window_that_closed_is_looked_up_once_then_forgotten(
    world: World,
) -> None:
    assert await world.escalator.check() == 0
    w = await world.open("w")
    await world.fire(w)
    await world.store.set_phase("w", WindowPhase.ABORTED, at=world.clock.now())
    world.clock.advance(AFTER)
    assert await world.escalator.check() == 0
    assert world.counting.calls["get_window"] == 1
    world.clock.advance(1)
    assert await world.escalator.check() == 0
    assert world.counting.calls["get_window"] == 1
    assert await world.escalated(w) == []


async def test_an_acknowledgement_committed_after_a_later_event_was_read_still_counts(
    world: World,
) -> None:
    assert await world.escalator.check() == 0
    w = await world.open("w")
    await world.fire(w)
    ack = await world.ack(w)
    assert ack.seq is not None
    world.counting.hidden.add(ack.seq)  # its transaction has not committed yet
    await world.fire(await world.open("other"))
    world.clock.advance(1)
    assert await world.escalator.check() == 0
    world.counting.hidden.clear()
    world.clock.advance(1)
    assert await world.escalator.check() == 0
    world.clock.advance(AFTER)
    assert await world.escalator.check() == 1  # only "other"
    assert await world.escalated(w) == []


async def test_a_backlog_is_read_over_several_checks_before_deciding(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(escalation, "_BATCH", 2)
    monkeypatch.setattr(escalation, "_READS", 1)
    assert await world.escalator.check() == 0
    w = await world.open("w")
    await world.fire(w)
    await world.fire(w, severity="warning")
    await world.ack(w)
    world.clock.advance(AFTER)
    world.counting.calls.clear()
    assert await world.escalator.check() == 0  # the alarm is overdue, the ack unread
    assert world.counting.calls == {"list_events_after": 1}
    world.clock.advance(1)
    assert await world.escalator.check() == 0
    assert await world.escalated(w) == []


async def test_settled_windows_that_closed_are_forgotten(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(escalation, "_SETTLED", 2)
    escalator = world.started()
    assert await escalator.check() == 0
    for i in range(4):
        w = await world.open(f"w{i}")
        await world.fire(w)
        await world.ack(w)
        if i:
            await world.store.set_phase(w.id, WindowPhase.PASSED, at=world.clock.now())
    world.clock.advance(1)
    assert await escalator.check() == 0
    assert escalator._settled == {"w0"}  # the only open one
