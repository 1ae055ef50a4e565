"""One behaviour suite for both stores: SQLite (a real WAL file) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from watchdog.alerts import Alert, AlertStatus
from watchdog.errors import ConfigError, Conflict, NotFound
from watchdog.model import (
    ActionStatus,
    Deployment,
    Event,
    EventKind,
    RuleState,
    Verdict,
    Window,
    WindowPhase,
)
from watchdog.store import migrate, open_store
from watchdog.store.base import KEEP_POINTS, PRUNE_EVERY, OutboxItem, OutboxStatus, RulePoint
from watchdog.store.postgres import PostgresStore
from watchdog.store.rows import PruneSchedule
from watchdog.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

AnyStore = SqliteStore | PostgresStore
Connect = Callable[[], Awaitable[AnyStore]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], AnyStore]]:
    """The backend's name and a factory of unopened stores sharing one database."""
    if request.param == "sqlite":
        path = str(tmp_path / "watchdog.db")
        return "sqlite", lambda: SqliteStore(path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    return "postgres", lambda: PostgresStore(dsn)


@pytest.fixture
async def connect(backend: tuple[str, Callable[[], AnyStore]]) -> AsyncIterator[Connect]:
    """Open another store on the same database; all are closed after the test."""
    opened: list[AnyStore] = []

    async def _connect() -> AnyStore:
        store = backend[1]()
        await store.open()
        opened.append(store)
        return store

    yield _connect
    for store in opened:
        await store.close()


@pytest.fixture
async def store(connect: Connect) -> AnyStore:
    """An open store on an empty database."""
    return await connect()


def window(
    wid: str,
    *,
    service: str = "api",
    environment: str = "prod",
    started_at: float = 1_000.0,
    phase: WindowPhase = WindowPhase.WATCHING,
) -> Window:
    deployment = Deployment(
        service=service,
        environment=environment,
        version="v2",
        previous_version="v1",
        labels={"team": "core", "region": "eu"},
        plan="default",
    )
    return Window(
        id=wid,
        deployment=deployment,
        phase=phase,
        started_at=started_at,
        ends_at=started_at + 1800,
        updated_at=started_at,
    )


def event(wid: str, at: float, kind: EventKind = EventKind.RULE_PENDING, **data: object) -> Event:
    return Event(window_id=wid, at=at, kind=kind, message=f"at {at}", rule="r1", data=data)


async def ids(store: AnyStore, **filters: Any) -> list[str]:
    return [w.id for w in await store.list_windows(**filters)]


# --- windows ---------------------------------------------------------------------------


async def test_insert_and_get_round_trip(store: AnyStore) -> None:
    w = window("w1")
    await store.insert_window(w)
    assert await store.get_window("w1") == w


async def test_get_unknown_window_is_none(store: AnyStore) -> None:
    assert await store.get_window("nope") is None


async def test_insert_duplicate_id_conflicts(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    with pytest.raises(Conflict):
        await store.insert_window(window("w1"))


async def test_list_windows_newest_first_with_filters(store: AnyStore) -> None:
    await store.insert_window(window("a", started_at=100))
    await store.insert_window(window("b", started_at=300, service="worker"))
    await store.insert_window(window("c", started_at=200, environment="staging"))
    await store.insert_window(window("d", started_at=400, phase=WindowPhase.PASSED))

    assert await ids(store) == ["d", "b", "c", "a"]
    assert await ids(store, service="api") == ["d", "c", "a"]
    assert await ids(store, environment="staging") == ["c"]
    assert await ids(store, phases={WindowPhase.PASSED}) == ["d"]
    watching = [WindowPhase.WATCHING, WindowPhase.HELD]
    assert await ids(store, service="api", environment="prod", phases=watching) == ["a"]
    assert await ids(store, phases=[]) == []
    assert await ids(store, limit=2) == ["d", "b"]


async def test_set_phase_is_compare_and_set(store: AnyStore) -> None:
    await store.insert_window(window("w1"))

    moved = await store.set_phase(
        "w1", WindowPhase.ROLLING_BACK, at=1_100, reason="5xx", expected=[WindowPhase.WATCHING]
    )
    assert moved
    got = await store.get_window("w1")
    assert got is not None
    assert (got.phase, got.updated_at, got.reason) == (WindowPhase.ROLLING_BACK, 1_100, "5xx")

    lost = await store.set_phase(
        "w1", WindowPhase.PASSED, at=1_200, expected=[WindowPhase.WATCHING, WindowPhase.HELD]
    )
    assert not lost
    assert await store.get_window("w1") == got

    assert await store.set_phase("w1", WindowPhase.ROLLED_BACK, at=1_300)
    got = await store.get_window("w1")
    assert got is not None and got.phase is WindowPhase.ROLLED_BACK
    assert not await store.set_phase("nope", WindowPhase.PASSED, at=1_400)


async def test_baselines_round_trip(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    baselines = {"p95": {'{route="/a"}': 0.25, '{route="/b"}': math.inf}, "errors": {"{}": 0.0}}
    await store.set_baselines("w1", baselines)
    got = await store.get_window("w1")
    assert got is not None
    assert got.baselines == baselines
    with pytest.raises(NotFound):
        await store.set_baselines("nope", baselines)


# --- rule states -----------------------------------------------------------------------


async def test_rule_state_upsert_and_non_finite_values(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    first = RuleState(verdict=Verdict.PENDING, pending_since={"{}": 10.0}, last_value=1.5)
    await store.save_rule_state("w1", "r1", first)
    second = RuleState(
        verdict=Verdict.FIRING,
        pending_since={'{a="1"}': 10.0},
        last_value=math.nan,
        worst_value=math.inf,
        fired_at=20.0,
        failures=2,
        reason="too high",
    )
    await store.save_rule_state("w1", "r1", second)
    await store.save_rule_state("w1", "r2", first)

    states = await store.load_rule_states("w1")
    assert set(states) == {"r1", "r2"}
    assert states["r2"] == first
    r1 = states["r1"]
    assert r1.last_value is not None and math.isnan(r1.last_value)
    assert r1.worst_value == math.inf
    assert (r1.verdict, r1.fired_at, r1.failures) == (Verdict.FIRING, 20.0, 2)
    assert r1.reason == "too high"
    assert r1.pending_since == {'{a="1"}': 10.0}
    assert await store.load_rule_states("other") == {}


# --- rule points -----------------------------------------------------------------------


async def test_rule_points_per_rule_oldest_first_newest_kept(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    await store.insert_window(window("w2"))
    for i in range(6):
        verdict = Verdict.FIRING if i >= 4 else Verdict.OK
        await store.add_rule_point("w1", "r1", RulePoint.of(1_000.0 + i, i / 10, verdict))
    await store.add_rule_point("w1", "r2", RulePoint.of(1_001.5, math.nan, Verdict.INCONCLUSIVE))
    await store.add_rule_point("w2", "r1", RulePoint.of(1_002.0, 9.0, Verdict.OK))

    points = await store.list_rule_points("w1", limit=3)
    assert sorted(points) == ["r1", "r2"]
    assert points["r1"] == [
        RulePoint(1_003.0, 0.3, Verdict.OK),
        RulePoint(1_004.0, 0.4, Verdict.FIRING),
        RulePoint(1_005.0, 0.5, Verdict.FIRING),
    ]
    assert points["r2"] == [RulePoint(1_001.5, None, Verdict.INCONCLUSIVE)]
    assert (await store.list_rule_points("w2"))["r1"][0].value == 9.0
    assert await store.list_rule_points("nope") == {}


async def test_rule_points_are_pruned_back_to_keep_points(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    writes = KEEP_POINTS + PRUNE_EVERY + 5  # the last prune ran at write KEEP + PRUNE_EVERY
    for i in range(writes):
        await store.add_rule_point("w1", "r1", RulePoint.of(float(i), float(i), Verdict.OK))
    points = (await store.list_rule_points("w1", limit=writes))["r1"]
    assert len(points) == KEEP_POINTS + 4
    assert points[0].at == float(writes - KEEP_POINTS - 4) and points[-1].at == writes - 1


def test_prune_schedule_is_every_nth_and_bounded() -> None:
    schedule = PruneSchedule(3, limit=2)
    due = [schedule.due(("w", "r")) for _ in range(7)]
    assert due == [True, False, False, True, False, False, True]
    assert schedule.due(("w", "s")) is True
    assert schedule.due(("w", "t")) is True  # over the limit: counters start again
    assert schedule.due(("w", "r")) is True


async def test_rule_point_for_unknown_window_is_refused(store: AnyStore) -> None:
    with pytest.raises(NotFound):
        await store.add_rule_point("nope", "r1", RulePoint.of(1.0, 1.0, Verdict.OK))


# --- events ----------------------------------------------------------------------------


async def test_events_append_in_order_and_after_seq(store: AnyStore) -> None:
    await store.insert_window(window("w1"))
    await store.insert_window(window("w2"))
    a = await store.append_event(event("w1", 1.0, EventKind.WINDOW_OPENED, version="v2"))
    other = await store.append_event(event("w2", 1.5))
    b = await store.append_event(event("w1", 2.0, values=[1.0, 2.0], nested={"k": None}))
    c = await store.append_event(event("w1", 3.0, EventKind.RULE_FIRING))

    assert a.seq is not None and b.seq is not None and c.seq is not None
    assert other.seq is not None
    assert a.seq < other.seq < b.seq < c.seq
    assert await store.list_events("w1") == [a, b, c]
    assert await store.list_events("w1", after_seq=a.seq) == [b, c]
    assert await store.list_events("w1", after_seq=c.seq) == []
    assert b.data == {"values": [1.0, 2.0], "nested": {"k": None}}


async def test_event_for_unknown_window_is_refused(store: AnyStore) -> None:
    with pytest.raises(NotFound):
        await store.append_event(event("nope", 1.0))


# --- action log ------------------------------------------------------------------------


async def test_claim_action_has_exactly_one_winner(connect: Connect) -> None:
    # Two stores on one database: separate connections (and pools), one action log.
    stores = [await connect(), await connect()]
    await stores[0].insert_window(window("w1"))

    claims = [
        stores[i % 2].claim_action("w1", "rollback", token=1, actor=f"actor-{i}", at=float(i))
        for i in range(20)
    ]
    results = await asyncio.gather(*claims)

    assert results.count(True) == 1
    winner = f"actor-{results.index(True)}"
    record = await stores[1].get_action("w1", "rollback")
    assert record is not None
    assert (record.actor, record.status, record.token) == (winner, ActionStatus.CLAIMED, 1)


async def test_stale_fencing_token_is_refused_and_writes_nothing(store: AnyStore) -> None:
    assert await store.claim_action("w1", "rollback", token=5, actor="leader-b", at=1.0)

    assert not await store.claim_action("w2", "rollback", token=3, actor="leader-a", at=2.0)
    assert await store.get_action("w2", "rollback") is None

    assert await store.claim_action("w2", "rollback", token=5, actor="leader-b", at=3.0)
    assert await store.claim_action("w3", "rollback", token=7, actor="leader-c", at=4.0)
    assert not await store.claim_action("w4", "rollback", token=5, actor="leader-b", at=5.0)
    assert await store.get_action("w4", "rollback") is None


async def test_claim_is_once_ever_even_with_a_newer_token(store: AnyStore) -> None:
    assert await store.claim_action("w1", "rollback", token=1, actor="a", at=1.0)
    assert not await store.claim_action("w1", "rollback", token=2, actor="b", at=2.0)
    record = await store.get_action("w1", "rollback")
    assert record is not None and record.actor == "a"
    assert await store.claim_action("w1", "notify", token=2, actor="b", at=3.0)


async def test_finish_action_and_get_action(store: AnyStore) -> None:
    assert await store.get_action("w1", "rollback") is None
    assert await store.claim_action("w1", "rollback", token=4, actor="node-1", at=10.0)

    await store.finish_action(
        "w1", "rollback", status=ActionStatus.SUCCEEDED, at=12.5, detail="2 steps"
    )

    record = await store.get_action("w1", "rollback")
    assert record is not None
    assert record.window_id == "w1" and record.action == "rollback"
    assert (record.status, record.token, record.actor) == (ActionStatus.SUCCEEDED, 4, "node-1")
    assert (record.claimed_at, record.finished_at, record.detail) == (10.0, 12.5, "2 steps")
    with pytest.raises(NotFound):
        await store.finish_action("w1", "never", status=ActionStatus.FAILED, at=13.0, detail=None)


# --- alerts ----------------------------------------------------------------------------


def am_alert(
    fp: str,
    starts_at: float = 100.0,
    status: AlertStatus = AlertStatus.FIRING,
    ends_at: float | None = None,
    **labels: str,
) -> Alert:
    return Alert(
        fingerprint=fp,
        starts_at=starts_at,
        status=status,
        labels={"alertname": "A", "service": "api", **labels},
        annotations={"summary": "ünïcode ok"},
        ends_at=ends_at,
        generator_url="http://prom/graph",
        receiver="watchdog",
    )


async def test_alerts_deduplicate_on_fingerprint_and_start(store: AnyStore) -> None:
    assert await store.record_alerts([am_alert("f1"), am_alert("f2")], at=1.0) == 2
    # the same group again, and the same group from an HA peer, plus one new alert
    assert await store.record_alerts([am_alert("f1"), am_alert("f2")], at=2.0) == 0
    assert await store.record_alerts([am_alert("f1"), am_alert("f3")], at=3.0) == 1
    # a re-firing of f1 is a new occurrence (new start)
    assert await store.record_alerts([am_alert("f1", starts_at=500.0)], at=4.0) == 1
    found = {(a.fingerprint, a.starts_at): a for a in await store.list_alerts()}
    assert set(found) == {("f1", 100.0), ("f2", 100.0), ("f3", 100.0), ("f1", 500.0)}
    f1 = found[("f1", 100.0)]
    assert (f1.notifications, f1.first_seen, f1.last_seen) == (3, 1.0, 3.0)
    assert f1.labels == {"alertname": "A", "service": "api"}
    assert f1.annotations == {"summary": "ünïcode ok"}
    assert f1.generator_url == "http://prom/graph" and f1.receiver == "watchdog"


async def test_resolved_alerts_stay_resolved_and_filter(store: AnyStore) -> None:
    await store.record_alerts([am_alert("f1"), am_alert("f2")], at=1.0)
    resolved = am_alert("f1", status=AlertStatus.RESOLVED, ends_at=150.0)
    await store.record_alerts([resolved], at=2.0)
    await store.record_alerts([am_alert("f1")], at=3.0)  # a late firing copy from a peer
    firing = await store.list_alerts(status=AlertStatus.FIRING)
    assert [a.fingerprint for a in firing] == ["f2"]
    done = await store.list_alerts(status=AlertStatus.RESOLVED)
    assert [(a.fingerprint, a.ends_at) for a in done] == [("f1", 150.0)]
    # active since 140: f1 (ended at 150) and f2 (firing); since 160: only f2
    assert {a.fingerprint for a in await store.list_alerts(active_since=140.0)} == {"f1", "f2"}
    assert [a.fingerprint for a in await store.list_alerts(active_since=160.0)] == ["f2"]
    assert len(await store.list_alerts(limit=1)) == 1


async def test_thousands_of_alerts_in_one_batch(store: AnyStore) -> None:
    batch = [am_alert(f"fp{i}", instance=str(i)) for i in range(3000)]
    assert await store.record_alerts(batch, at=1.0) == 3000
    assert await store.record_alerts(batch, at=2.0) == 0
    assert len(await store.list_alerts(limit=5000)) == 3000


# --- migrations ------------------------------------------------------------------------


async def test_migrations_apply_once(
    backend: tuple[str, Callable[[], AnyStore]], connect: Connect
) -> None:
    first = await connect()
    await first.insert_window(window("kept"))
    await first.close()

    again = await connect()
    second = await connect()  # two open at once: neither re-applies anything
    expected = [m.version for m in migrate.load(backend[0])]
    assert await again.applied_migrations() == expected
    assert await second.applied_migrations() == expected
    assert await second.get_window("kept") is not None


# --- open_store (no I/O) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/watchdog.db", "data/watchdog.db"),
        ("sqlite:////var/lib/watchdog/state.db", "/var/lib/watchdog/state.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_open_store_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


@pytest.mark.parametrize("url", ["postgresql://u@h:5432/db", "postgres://u:p@h/db"])
def test_open_store_postgres_urls(url: str) -> None:
    assert isinstance(open_store(url), PostgresStore)


@pytest.mark.parametrize(
    "url", ["mysql://h/db", "sqlite://relative.db", "sqlite:///", "data.db", "sqlite:///x.db?a=1"]
)
def test_open_store_rejects_other_urls(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert info.value.problems


async def test_in_memory_sqlite_store_works() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    try:
        await store.insert_window(window("m1"))
        assert await store.get_window("m1") == window("m1")
        assert await store.claim_action("m1", "rollback", token=0, actor="me", at=1.0)
    finally:
        await store.close()


# --- the notification outbox --------------------------------------------------------


def note(wid: str, seq: int, channel: str = "slack", due: float = 10.0) -> OutboxItem:
    return OutboxItem(wid, channel, seq, f'{{"seq": {seq}}}', due_at=due, created_at=5.0)


async def test_outbox_enqueue_skips_duplicates_and_lists_oldest_first(store: AnyStore) -> None:
    added = await store.enqueue_notifications([note("w1", 2), note("w1", 1, "pagerduty")])
    assert added == 2
    # A retried enqueue of the same (channel, event) must not send twice.
    assert await store.enqueue_notifications([note("w1", 2), note("w1", 3)]) == 1
    pending = await store.pending_notifications()
    assert [(p.channel, p.event_seq) for p in pending] == [
        ("slack", 2),
        ("pagerduty", 1),
        ("slack", 3),
    ]
    assert pending[0].payload == '{"seq": 2}'
    assert pending[0].status is OutboxStatus.PENDING and pending[0].attempts == 0
    assert pending[0].id is not None


async def test_outbox_update_moves_items_out_of_pending(store: AnyStore, connect: Connect) -> None:
    await store.enqueue_notifications([note("w1", 1), note("w1", 2), note("w1", 3)])
    first, second, third = await store.pending_notifications()
    assert first.id is not None and second.id is not None and third.id is not None
    await store.update_notification(
        first.id, status=OutboxStatus.SENT, attempts=1, due_at=11.0, error=None
    )
    await store.update_notification(
        second.id, status=OutboxStatus.PENDING, attempts=2, due_at=40.0, error="HTTP 500"
    )
    await store.update_notification(
        third.id, status=OutboxStatus.FAILED, attempts=1, due_at=11.0, error="HTTP 400"
    )
    other = await connect()  # survives a restart: it is in the database
    pending = await other.pending_notifications()
    assert [(p.event_seq, p.attempts, p.due_at, p.last_error) for p in pending] == [
        (2, 2, 40.0, "HTTP 500")
    ]
    assert await other.pending_notifications(limit=0) == []


async def test_thread_reference_first_one_wins(store: AnyStore) -> None:
    assert await store.get_thread("w1", "slack") is None
    await store.set_thread("w1", "slack", "1700000000.000100")
    await store.set_thread("w1", "slack", "1700000000.000200")
    assert await store.get_thread("w1", "slack") == "1700000000.000100"
    assert await store.get_thread("w1", "pagerduty") is None
