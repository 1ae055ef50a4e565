"""The retention role (issue 13, item 7): what ``prune`` deletes, what it keeps, and how
much at a time. SQLite (a real WAL file) and a real PostgreSQL pass the same tests."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.store.conftest import AnyStore, Connect, event, window
from tests.integration.store.test_alerts import am_alert
from tests.integration.store.test_outbox import note
from watchdog.foundation.errors import FencedOut
from watchdog.foundation.model import ActionStatus, RuleState, Verdict, WindowPhase
from watchdog.store.base import OutboxStatus, RulePoint

pytestmark = pytest.mark.integration

OLD, CUT, NEW = 1_000.0, 2_000.0, 5_000.0


async def filled(store: AnyStore, wid: str, *, at: float, phase: WindowPhase, seq: int) -> None:
    """A window last changed at ``at`` with one of everything keyed by it."""
    await store.insert_window(window(wid, started_at=at - 1800))
    await store.append_event(event(wid, at - 10))
    await store.save_rule_state(wid, "r1", RuleState())
    await store.add_rule_point(wid, "r1", RulePoint.of(at - 10, 1.0, Verdict.OK))
    await store.claim_action(wid, "rollback", token=seq, actor="t", at=at - 5)
    await store.finish_action(
        wid, "rollback", status=ActionStatus.SUCCEEDED, at=at - 1, detail=None, token=seq
    )
    await store.enqueue_notifications([note(wid, seq)])
    await store.set_thread(wid, "slack", f"ts-{wid}")
    await store.set_phase(wid, phase, at=at)


async def everything(store: AnyStore, wid: str) -> tuple[object, ...]:
    return (
        await store.get_window(wid),
        await store.list_events(wid),
        await store.load_rule_states(wid),
        await store.list_rule_points(wid),
        await store.get_action(wid, "rollback"),
        await store.get_thread(wid, "slack"),
    )


async def test_closed_windows_go_with_everything_keyed_by_them(store: AnyStore) -> None:
    await filled(store, "old-passed", at=OLD, phase=WindowPhase.PASSED, seq=1)
    await filled(store, "old-rolled", at=OLD, phase=WindowPhase.ROLLED_BACK, seq=2)
    await filled(store, "old-open", at=OLD, phase=WindowPhase.HELD, seq=3)
    await filled(store, "new-passed", at=NEW, phase=WindowPhase.PASSED, seq=4)
    kept_before = [await everything(store, w) for w in ("old-open", "new-passed")]

    done = await store.prune(before=CUT, windows=10, rows=100)

    assert done == {
        "events": 2,
        "rule_states": 2,
        "rule_samples": 2,
        "actions": 2,
        "outbox": 2,
        "notify_threads": 2,
        "windows": 2,
        "alerts": 0,
    }
    for gone in ("old-passed", "old-rolled"):
        assert await everything(store, gone) == (None, [], {}, {}, None, None)
    # A window still open is never pruned, however old; nor is a recent closed one.
    assert [await everything(store, w) for w in ("old-open", "new-passed")] == kept_before
    # The fence remembers the newest token even though its claims were pruned.
    await store.insert_window(window("later"))
    with pytest.raises(FencedOut):
        await store.claim_action("later", "rollback", token=3, actor="stale", at=NEW)
    assert await store.claim_action("later", "rollback", token=4, actor="leader", at=NEW)


async def test_delivered_and_dead_notifications_and_stale_alerts_go(store: AnyStore) -> None:
    await store.insert_window(window("w1"))  # open: the outbox is pruned on its own
    await store.enqueue_notifications([note("w1", s) for s in (1, 2, 3)])
    sent, failed, pending = await store.pending_notifications()
    assert sent.id is not None and failed.id is not None
    await store.update_notification(
        sent.id, status=OutboxStatus.SENT, attempts=1, due_at=6.0, error=None
    )
    await store.update_notification(
        failed.id, status=OutboxStatus.FAILED, attempts=5, due_at=6.0, error="HTTP 400"
    )
    await store.record_alerts([am_alert("stale"), am_alert("fresh")], at=OLD)
    await store.record_alerts([am_alert("fresh")], at=NEW)  # seen again since the cut

    # Outbox rows were created at 5.0: a cut at 6.0 takes the sent and dead ones.
    done = await store.prune(before=6.0, windows=10, rows=100)
    assert (done["outbox"], done["alerts"], done["windows"]) == (2, 0, 0)
    assert [p.event_seq for p in await store.pending_notifications()] == [pending.event_seq]

    done = await store.prune(before=CUT, windows=10, rows=100)
    assert done["alerts"] == 1
    assert [a.fingerprint for a in await store.list_alerts()] == ["fresh"]
    assert await store.get_window("w1") is not None


async def test_each_call_deletes_one_bounded_batch(store: AnyStore) -> None:
    for i in range(7):
        await store.insert_window(window(f"w{i}", started_at=OLD - 1800))
        await store.set_phase(f"w{i}", WindowPhase.PASSED, at=OLD + i)
    await store.record_alerts([am_alert(f"a{i}") for i in range(250)], at=OLD)

    rounds, left = [], []
    for _ in range(4):
        done = await store.prune(before=CUT, windows=3, rows=100)
        rounds.append((done["windows"], done["alerts"]))
        left.append(sorted(w.id for w in await store.list_windows()))
    assert rounds == [(3, 100), (3, 100), (1, 50), (0, 0)]
    # Oldest first: the windows closed earliest go first.
    assert left == [["w3", "w4", "w5", "w6"], ["w6"], [], []]


async def test_two_replicas_pruning_at_once_delete_each_row_once(
    store: AnyStore, connect: Connect
) -> None:
    other = await connect()  # a second replica on the same database
    for i in range(20):
        await store.insert_window(window(f"w{i}", started_at=OLD - 1800))
        await store.append_event(event(f"w{i}", OLD - 10))
        await store.set_phase(f"w{i}", WindowPhase.PASSED, at=OLD)
    await store.record_alerts([am_alert(f"a{i}") for i in range(60)], at=OLD)
    totals = {"windows": 0, "events": 0, "alerts": 0}
    for _ in range(4):
        rounds = await asyncio.gather(
            store.prune(before=CUT, windows=4, rows=10),
            other.prune(before=CUT, windows=4, rows=10),
        )
        for done in rounds:
            for table in totals:
                totals[table] += done[table]
    assert totals == {"windows": 20, "events": 20, "alerts": 60}
    assert await store.list_windows() == [] and await store.list_alerts() == []
