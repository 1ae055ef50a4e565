"""Two replicas on one store, leadership moved by hand: a deposed leader never writes an
outcome, only the leader evaluates and journals, and a manual rollback asked of a
follower is run by the leader. Fake clock, real SQLite, nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.rules import errors_rollback
from tests.world import app_settings, opened
from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.spec import Plan
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import Queued
from watchdog.foundation.model import (
    Action,
    ActionStatus,
    Deployment,
    EventKind,
    Sample,
    Window,
    WindowPhase,
)
from watchdog.ha.coord import SingleNode
from watchdog.lifecycle.engine import Engine
from watchdog.lifecycle.windows import WindowService
from watchdog.pipeline import Decision
from watchdog.pipeline.recovery import Recovery
from watchdog.sources import SampleContext
from watchdog.store.sqlite import SqliteStore

PLAN = Plan.model_validate(
    {
        "steps": [
            {"name": "one", "kind": "command", "argv": ["true"], "idempotent": True},
            {"name": "two", "kind": "command", "argv": ["true"], "idempotent": True},
        ]
    }
)


@dataclass
class Switch:
    """A coordinator the test hands leadership to (None: another replica leads)."""

    current: int | None = None
    refusals: list[tuple[int, int]] = field(default_factory=list)

    async def token(self) -> int | None:
        return self.current

    async def carry(self, held: int) -> int | None:
        return self.current if self.current == held else None

    def refused(self, token: int, newest: int) -> None:
        self.refusals.append((token, newest))
        self.current = None

    def problem(self) -> str | None:
        return f"refused {self.refusals[-1]}" if self.refusals else None

    async def close(self) -> None:
        return None


@dataclass
class Source:
    value: float | None = 0.0  # None: no data
    calls: int = 0

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        self.calls += 1
        return Sample.no_data("none") if self.value is None else Sample.of(self.value)

    async def close(self) -> None:
        return None


@dataclass
class Executor:
    """Records calls; the first call of a step named in ``hold`` waits for its gate."""

    calls: list[str] = field(default_factory=list)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)

    async def run(self, step: Any, ctx: ActionContext) -> StepResult:
        self.calls.append(step.name)
        gate = self.hold.pop(step.name, None)
        if gate is not None:
            await gate.wait()
        return StepResult(output="ok")


@dataclass
class Replica:
    switch: Switch
    engine: Engine
    windows: WindowService
    recovery: Recovery
    registry: CollectorRegistry
    source: Source


@dataclass
class Pair:
    store: SqliteStore
    clock: FakeClock
    executor: Executor
    a: Replica
    b: Replica

    async def take_over(self, new: Replica, old: Replica) -> int:
        """``new`` acquires the lease (the store issues its token); ``old`` is deposed."""
        old.switch.current = None
        new.switch.current = await self.store.advance_fence(1)
        return new.switch.current

    async def kinds(self, window: Window) -> list[EventKind]:
        return [e.kind for e in await self.store.list_events(window.id)]


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """Two apps built through App.build on one store, their leadership in a Switch."""
    store = SqliteStore(str(tmp_path / "shared.db"))
    await store.open()
    clock = FakeClock()
    executor = Executor()
    plan = PLAN.model_dump(mode="json", exclude_none=True)
    settings = app_settings(
        tmp_path, errors_rollback(tmp_path), plans={"p": plan}, default_plan="p", confirm_for=0
    )  # confirm_for 0: ends at rolled_back (confirmation has its own tests)
    replicas = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            switch, source = Switch(), Source()
            seams = {"store": store, "clock": clock, "coordinator": switch}
            seams |= {"sources": {"prometheus": source}, "executors": {"command": executor}}
            parts = await stack.enter_async_context(opened(settings, **seams))
            replicas.append(
                Replica(
                    switch,
                    parts.engine,
                    parts.windows,
                    parts.recovery,
                    parts.metrics.registry,
                    source,
                )
            )
        p = Pair(store, clock, executor, *replicas)
        await p.take_over(p.a, p.b)
        yield p
        for r in replicas:
            await r.engine.drain()
    await store.close()


async def open_window(p: Pair) -> Window:
    return await p.a.windows.open_window(
        Deployment("api", "production", "v2", previous_version="v1"),
        window_seconds=600,
        actor="test",
    )


def manual(window: Window, at: float) -> Decision:
    return Decision(window, Action.ROLLBACK, "manual", "api", "broken", at)


async def test_a_leader_deposed_between_steps_stops_and_the_leader_finishes(pair: Pair) -> None:
    p = pair
    w = await open_window(p)
    gate = p.executor.hold["one"] = asyncio.Event()
    running = asyncio.create_task(p.a.engine.decide(manual(w, p.clock.now())))
    while p.executor.calls != ["one"]:  # until step one is running on a
        await asyncio.sleep(0)
    await p.take_over(p.b, p.a)  # a froze past its lease
    gate.set()
    assert await running is None  # a stopped before step two

    kinds = await p.kinds(w)
    assert EventKind.LEADERSHIP_LOST in kinds and EventKind.ROLLBACK_FAILED not in kinds
    lost = [e for e in await p.store.list_events(w.id) if e.kind is EventKind.LEADERSHIP_LOST]
    assert lost[0].message.endswith("the leader resumes")
    action = await p.store.get_action(w.id, "rollback")
    assert action is not None and action.status is ActionStatus.CLAIMED

    assert await p.b.recovery.run() == 1
    assert p.executor.calls == ["one", "two"]  # step two once, by the new leader
    final = await p.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLED_BACK
    assert (await p.kinds(w)).count(EventKind.ROLLBACK_SUCCEEDED) == 1


async def test_a_deposed_leader_cannot_rewrite_the_leaders_outcome(pair: Pair) -> None:
    p = pair
    w = await open_window(p)
    gate = p.executor.hold["two"] = asyncio.Event()
    running = asyncio.create_task(p.a.engine.decide(manual(w, p.clock.now())))
    while p.executor.calls != ["one", "two"]:  # a is inside its last step
        await asyncio.sleep(0)
    await p.take_over(p.b, p.a)
    assert await p.b.recovery.run() == 1  # repeats step two (idempotent) and succeeds
    gate.set()  # a wakes up, its last step "returns"
    assert await running is None

    action = await p.store.get_action(w.id, "rollback")
    assert action is not None and action.status is ActionStatus.SUCCEEDED
    final = await p.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLED_BACK
    kinds = await p.kinds(w)
    assert EventKind.ROLLBACK_FAILED not in kinds
    assert kinds.count(EventKind.ROLLBACK_SUCCEEDED) == 1
    assert kinds.count(EventKind.LEADERSHIP_LOST) == 1
    # Loud: the refusal reached the coordinator (/readyz) and the metric.
    assert p.a.switch.refusals == [(1, 2)]
    assert p.a.registry.get_sample_value("watchdog_fencing_refused_total") == 1


async def test_only_the_leader_evaluates_and_journals(pair: Pair) -> None:
    p = pair
    w = await open_window(p)

    async def both_tick(times: int, step: float) -> None:
        for _ in range(times):
            for r in (p.a, p.b):
                await r.engine.tick()
                await r.engine.drain()
            p.clock.advance(step)

    p.a.source.value = p.b.source.value = None  # no data: an inconclusive transition
    await both_tick(35, 10)  # past the midpoint
    p.a.source.value = p.b.source.value = 0.5
    await both_tick(3, 10)
    assert p.b.source.calls == 0 and p.a.source.calls >= 35
    kinds = await p.kinds(w)
    assert kinds.count(EventKind.RULE_INCONCLUSIVE) == 1
    assert kinds.count(EventKind.WINDOW_MIDPOINT) == 1
    assert kinds.count(EventKind.RULE_FIRING) == 1
    assert kinds.count(EventKind.ROLLBACK_STARTED) == 1
    assert p.executor.calls == ["one", "two"]


async def test_a_takeover_reads_rule_states_from_the_store(pair: Pair) -> None:
    p = pair
    w = await open_window(p)
    p.a.source.value = p.b.source.value = 0.01
    await p.a.engine.tick()
    await p.a.engine.drain()
    await p.b.engine.tick()  # a follower: nothing cached, nothing evaluated
    await p.take_over(p.b, p.a)
    p.clock.advance(10)
    await p.b.engine.tick()
    await p.b.engine.drain()
    # b knew the rule was ok from the store: no "has data again"/resolved transition.
    assert [k for k in await p.kinds(w) if k.value.startswith("rule_")] == []
    assert p.b.source.calls == 1


async def test_a_manual_rollback_on_a_follower_is_run_by_the_leader(pair: Pair) -> None:
    p = pair
    w = await open_window(p)
    with pytest.raises(Queued, match=r"queued: the leader will roll back \w+ within \d+s"):
        await p.b.windows.rollback(w.id, actor="api", reason="broken")  # nobody ticks
    kinds = await p.kinds(w)
    assert kinds.count(EventKind.ROLLBACK_REQUESTED) == 1
    requested = [e for e in await p.store.list_events(w.id) if e.data.get("queued")]
    assert "queued, the leader will roll back within" in requested[0].message
    assert p.executor.calls == []

    await p.a.engine.tick()  # the leader takes the request
    await p.a.engine.drain()
    assert p.executor.calls == ["one", "two"]
    action = await p.store.get_action(w.id, "rollback")
    assert action is not None and action.actor == "api"
    final = await p.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLED_BACK
    await p.a.engine.tick()  # taken once
    await p.a.engine.drain()
    assert p.executor.calls == ["one", "two"]


async def test_a_single_node_takes_one_token_from_the_store_and_renews_after_a_refusal(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "single.db"))
    await store.open()
    await store.advance_fence(20)  # the store was once used by an HA deployment
    acquired: list[int] = []
    node = SingleNode(store.advance_fence, on_acquire=lambda: acquired.append(1))
    tokens = await asyncio.gather(*(node.token() for _ in range(5)))  # recovery, tick, ...
    assert tokens == [21] * 5 and acquired == []
    assert await store.claim_action("w1", "rollback", token=21, actor="me", at=1.0)
    node.refused(21, 22)
    assert node.problem() == "fencing token #21 refused by the store (newest #22)"
    assert await node.token() == 22  # the store's next token (nobody else issued one)
    assert acquired == [1] and node.problem() is None  # recovery runs again
    await store.close()
