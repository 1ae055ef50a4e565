"""The outbox and the delivery worker, built through App.build with a fake clock and
scripted channels at the channel seam: order per window, backoff, Retry-After, permanent
failures reported, routes. Nothing sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.rules import rules
from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.notify.delivery import Backoff, DeliveryWorker, journal_report
from watchdog.store.base import Store
from watchdog.store.journal import Journal


@dataclass
class ScriptedChannel:
    """Records deliveries; raises the scripted errors first."""

    name: str
    errors: list[Exception] = field(default_factory=list)
    kinds: frozenset[EventKind] | None = None
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (window, message)
    hang: asyncio.Event | None = None  # when set: every delivery waits for it
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, kind: EventKind) -> bool:
        return self.kinds is None or kind in self.kinds

    async def deliver(self, event: Event, window: Window) -> None:
        self.entered.set()
        if self.hang is not None:
            await self.hang.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append((window.id, event.message))
        self.changed.set()

    async def until(self, count: int) -> None:
        """Wait until ``count`` deliveries have landed."""
        while len(self.delivered) < count:
            self.changed.clear()
            await self.changed.wait()


@dataclass
class Post:
    clock: FakeClock
    store: Store
    journal: Journal
    slack: ScriptedChannel
    pager: ScriptedChannel
    worker: DeliveryWorker

    async def window(self, wid: str, service: str = "api") -> Window:
        now = self.clock.now()
        w = Window(wid, Deployment(service, "prod", "v2"), WindowPhase.WATCHING, now, now + 60, now)
        await self.store.insert_window(w)
        return w

    async def say(self, w: Window, message: str, kind: EventKind = EventKind.RULE_FIRING) -> None:
        data = {"severity": "critical"} if kind is EventKind.RULE_FIRING else {}
        await self.journal.record(w, kind, message, at=self.clock.now(), data=data)


@asynccontextmanager
async def built(
    tmp_path: Path, routes: list[dict[str, Any]] | None = None, timeout: float = 5
) -> AsyncIterator[Post]:
    """The app as App.build wires it, the two channels scripted at the channel seam."""
    clock = FakeClock()
    slack = ScriptedChannel("slack")
    pager = ScriptedChannel("pagerduty", kinds=frozenset({EventKind.RULE_FIRING}))
    notify = {
        "slack_bot_token": "xoxb-never-used-0123456789",  # configured, then replaced by the fake
        "pagerduty_routing_key": "never-used-0123456789",
        "routes": routes or [],
        **{"timeout": timeout, "backoff": 2, "backoff_max": 60, "max_attempts": 3},
    }
    settings = app_settings(
        tmp_path,
        rules(tmp_path).group("quiet", None).http("never", "http://127.0.0.1:1/", action="notify"),
        notify=notify,
    )
    async with opened(settings, clock=clock, channels={"slack": slack, "pagerduty": pager}) as p:
        yield Post(clock, p.store, p.journal, slack, pager, p.notify.worker)


@pytest.fixture
async def post(tmp_path: Path) -> AsyncIterator[Post]:
    async with built(tmp_path) as post:
        yield post


async def test_each_routed_channel_gets_the_event_once(post: Post) -> None:
    w = await post.window("w1")
    await post.say(w, "fired")
    await post.say(w, "opened", EventKind.WINDOW_OPENED)
    assert await post.worker.run_once() == 3
    assert post.slack.delivered == [("w1", "fired"), ("w1", "opened")]
    assert post.pager.delivered == [("w1", "fired")]  # PagerDuty only wants firing
    assert await post.worker.run_once() == 0  # nothing is sent twice


async def test_transient_failure_backs_off_and_holds_back_that_window_only(post: Post) -> None:
    a, b = await post.window("a"), await post.window("b")
    post.slack.errors = [TransientError("HTTP 500")]
    await post.say(a, "a1")
    await post.say(a, "a2")
    await post.say(b, "b1")
    await post.worker.run_once()
    # a1 failed: a2 must wait behind it (order per window); b is unaffected.
    assert post.slack.delivered == [("b", "b1")]
    pending = [p for p in await post.store.pending_notifications() if p.channel == "slack"]
    assert [(p.attempts, p.due_at - post.clock.now(), p.last_error) for p in pending] == [
        (1, 2.0, "HTTP 500"),
        (0, 0.0, None),
    ]
    await post.worker.run_once()
    assert post.slack.delivered == [("b", "b1")]  # not due yet
    post.clock.advance(2)
    await post.worker.run_once()
    assert post.slack.delivered == [("b", "b1"), ("a", "a1"), ("a", "a2")]


async def test_retry_after_is_honoured(post: Post) -> None:
    w = await post.window("w")
    post.slack.errors = [TransientError("HTTP 429", retry_after=30)]
    await post.say(w, "fired")
    await post.worker.run_once()
    post.clock.advance(29)
    await post.worker.run_once()
    assert post.slack.delivered == []
    post.clock.advance(1)
    await post.worker.run_once()
    assert post.slack.delivered == [("w", "fired")]


async def test_permanent_failure_is_reported_in_the_journal(post: Post) -> None:
    w = await post.window("w")
    post.pager.errors = [PermanentError("pagerduty: HTTP 400 invalid event")]
    await post.say(w, "fired")
    await post.worker.run_once()
    assert post.pager.delivered == []
    failed = [e for e in await post.store.list_events("w") if e.kind is EventKind.NOTIFY_FAILED]
    assert len(failed) == 1
    assert "pagerduty" in failed[0].message and "HTTP 400" in failed[0].message
    post.clock.advance(3600)
    await post.worker.run_once()
    assert post.pager.delivered == []  # permanent: never retried
    assert post.slack.delivered == [("w", "fired")]  # the report itself is not re-notified


async def test_retries_exhausted_give_up_and_report(post: Post) -> None:
    w = await post.window("w")
    post.slack.errors = [TransientError("refused")] * 3
    await post.say(w, "fired")
    for _ in range(3):
        await post.worker.run_once()
        post.clock.advance(60)
    assert post.slack.delivered == []
    failed = [e for e in await post.store.list_events("w") if e.kind is EventKind.NOTIFY_FAILED]
    assert len(failed) == 1 and "gave up after 3 attempts" in failed[0].message
    rows = await post.store.pending_notifications()
    assert all(r.channel != "slack" for r in rows)


async def test_backoff_doubles_and_is_capped() -> None:
    backoff = Backoff(first=1, cap=10)
    assert [backoff.delay(n, None) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.delay(1, 600) == 10  # a huge Retry-After is capped too
    # the one rule shared with rollback steps: Retry-After is a floor, never a shortcut
    assert backoff.delay(4, 3) == 8 and backoff.delay(1, 3) == 3


async def test_routes_pick_channels_by_service_and_severity(tmp_path: Path) -> None:
    routes = [
        {"channels": ["pagerduty"], "services": ["pay*"], "min_severity": "critical"},
        {"channels": ["slack"], "services": ["*"], "min_severity": "warning"},
    ]
    async with built(tmp_path, routes) as post:
        await route_three(post)


async def route_three(post: Post) -> None:
    pay, api = await post.window("p", "payments"), await post.window("a", "api")
    await post.say(pay, "pay fired")
    await post.say(api, "api fired")
    await post.say(api, "api opened", EventKind.WINDOW_OPENED)  # info: no route
    await post.worker.run_once()
    assert post.pager.delivered == [("p", "pay fired")]
    assert post.slack.delivered == [("p", "pay fired"), ("a", "api fired")]


async def test_outbox_rows_are_marked_sent(post: Post) -> None:
    w = await post.window("w")
    await post.say(w, "fired")
    await post.worker.run_once()
    assert await post.store.pending_notifications() == []


class Mono:
    """A monotonic clock moved by hand (a worker frozen between claim and send)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_two_replicas_send_each_notification_once_in_order(post: Post) -> None:
    w = await post.window("w1")
    for n in range(5):
        await post.say(w, f"event {n}")
    # A second replica's worker on the same store, with its own channels.
    slack2 = ScriptedChannel("slack")
    pager2 = ScriptedChannel("pagerduty", kinds=frozenset({EventKind.RULE_FIRING}))
    report = journal_report(post.journal, post.clock)
    other = DeliveryWorker(post.store, {"slack": slack2, "pagerduty": pager2}, post.clock, report)
    sent = await asyncio.gather(post.worker.run_once(), other.run_once())
    sent += await asyncio.gather(post.worker.run_once(), other.run_once())
    assert sum(sent) == 10  # five events, two channels: each sent once
    for mine, theirs in ((post.slack, slack2), (post.pager, pager2)):
        together = [m for _, m in mine.delivered + theirs.delivered]
        assert sorted(together) == [f"event {n}" for n in range(5)]
        # Order per (window, channel) holds whoever sent what: one worker's share is a
        # run of consecutive events, never interleaved with the other's.
        for part in (mine.delivered, theirs.delivered):
            got = [int(m.split()[1]) for _, m in part]
            if got:
                assert got == list(range(got[0], got[0] + len(got)))


async def test_a_row_claimed_by_another_replica_holds_back_its_window(post: Post) -> None:
    w = await post.window("w1")
    await post.say(w, "first", EventKind.WINDOW_OPENED)
    await post.say(w, "second", EventKind.WINDOW_OPENED)
    first = (await post.store.pending_notifications())[0]
    assert first.id is not None
    now = post.clock.now()
    assert await post.store.claim_notification(first.id, owner="frozen", now=now, until=now + 20)
    assert await post.worker.run_once() == 0  # "second" waits behind the claimed "first"
    post.clock.advance(21)  # the claimer froze: its claim expires
    assert await post.worker.run_once() == 2
    assert post.slack.delivered == [("w1", "first"), ("w1", "second")]


async def test_a_worker_frozen_after_claiming_does_not_send(post: Post) -> None:
    mono = Mono()
    channels = {"slack": post.slack}
    report = journal_report(post.journal, post.clock)
    worker = DeliveryWorker(post.store, channels, post.clock, report, monotonic=mono)
    w = await post.window("w1")
    await post.say(w, "told", EventKind.WINDOW_OPENED)
    real_claim = post.store.claim_notification

    async def claim_then_freeze(item_id: int, **kw: Any) -> bool:
        won = await real_claim(item_id, **kw)
        mono.t += 6  # SIGSTOP between the claim and the send, past CLAIM_MARGIN
        return won

    post.store.claim_notification = claim_then_freeze  # type: ignore[method-assign]
    assert await worker.run_once() == 0
    assert post.slack.delivered == []  # the claim may be someone else's by now


async def test_a_hanging_channel_never_delays_another(tmp_path: Path) -> None:
    """Issue 25 M3: a later event reaches PagerDuty while Slack still hangs on the first."""
    async with built(tmp_path, timeout=600) as post:
        post.slack.hang = asyncio.Event()
        w = await post.window("w")
        await post.say(w, "fired")
        runner = asyncio.create_task(post.worker.run())
        try:
            async with asyncio.timeout(60):  # a regression fails here instead of hanging
                await post.pager.until(1)
                await post.slack.entered.wait()
                await post.say(w, "fired again")  # the journal wakes the worker
                await post.pager.until(2)
            assert post.slack.delivered == [] and not post.slack.hang.is_set()
            post.slack.hang.set()
            await post.slack.until(2)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    assert post.slack.delivered == [("w", "fired"), ("w", "fired again")]


async def test_a_marker_has_its_own_small_deadline_and_few_attempts(tmp_path: Path) -> None:
    async with built(tmp_path) as post:
        grafana = ScriptedChannel("grafana", hang=asyncio.Event())
        reports: list[str] = []

        async def report(window: Window, item: Any, error: str) -> None:
            reports.append(error)

        worker = DeliveryWorker(
            post.store, {"grafana": grafana, "pagerduty": post.pager}, post.clock, report,
            backoff=Backoff(timeout=600, first=1, marker_timeout=0.01, marker_attempts=2),
        )  # fmt: skip
        w = await post.window("w")
        await post.say(w, "fired")
        (row,) = [r for r in await post.store.pending_notifications() if r.channel == "pagerduty"]
        await post.store.enqueue_notifications(
            [dataclasses.replace(row, id=None, channel="grafana")]
        )
        await worker.run_once()  # the marker's attempt ends at its own deadline
        assert post.pager.delivered == [("w", "fired")]
        (marker,) = await post.store.pending_notifications()
        assert (marker.channel, marker.attempts, marker.last_error) == (
            "grafana",
            1,
            "timed out after 0.01s",
        )
        post.clock.advance(1)
        await worker.run_once()  # second and last attempt: given up, journaled
        assert await post.store.pending_notifications() == []
        assert reports == ["gave up after 2 attempts: timed out after 0.01s"]
