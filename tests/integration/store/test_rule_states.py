"""The RuleStateStore contract: rule states and rule points, run on SQLite and PostgreSQL
(fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.integration.store.conftest import window
from watchdog.foundation.errors import NotFound
from watchdog.foundation.model import RuleState, Verdict
from watchdog.store.base import (
    KEEP_POINTS,
    PRUNE_EVERY,
    RulePoint,
    RuleStateStore,
    WindowStore,
)
from watchdog.store.batch import WriteBatcher
from watchdog.store.rows import PruneSchedule

pytestmark = pytest.mark.integration


async def test_rule_state_upsert_and_non_finite_values(
    store: RuleStateStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
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


async def test_rule_points_per_rule_oldest_first_newest_kept(
    store: RuleStateStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
    await windows.insert_window(window("w2"))
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


async def test_a_judge_points_counts_round_trip(
    store: RuleStateStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
    counts = {"errors": 12.0, "requests": 4800.0, "baseline_errors": 36.0,
              "baseline_requests": 36_000.0, "limit": 0.0067}  # fmt: skip
    await store.add_rule_point("w1", "j", RulePoint.of(1_000.0, 0.0025, Verdict.OK, counts))
    [point] = (await store.list_rule_points("w1"))["j"]
    assert point == RulePoint(1_000.0, 0.0025, Verdict.OK, counts)


async def test_rule_points_are_pruned_back_to_keep_points(
    store: RuleStateStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
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


async def test_rule_point_for_unknown_window_is_refused(store: RuleStateStore) -> None:
    with pytest.raises(NotFound):
        await store.add_rule_point("nope", "r1", RulePoint.of(1.0, 1.0, Verdict.OK))


async def test_batched_evaluation_writes_read_back_and_a_bad_one_fails_alone(
    store: RuleStateStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
    await windows.insert_window(window("w2"))
    writes = WriteBatcher(store)  # SQLite takes batches; PostgreSQL gets one write at a time
    firing = RuleState(verdict=Verdict.FIRING, last_value=2.0, fired_at=5.0)

    async def record(window_id: str, rule: str, at: float) -> None:
        await writes.record(window_id, rule, firing, RulePoint.of(at, 2.0, Verdict.FIRING))

    done = await asyncio.gather(
        *(record(w, f"r{i}", 10.0 + i) for w in ("w1", "w2") for i in range(5)),
        record("gone", "r0", 10.0),
        return_exceptions=True,
    )
    assert [type(d) for d in done] == [type(None)] * 10 + [NotFound]
    for w in ("w1", "w2"):
        assert await store.load_rule_states(w) == {f"r{i}": firing for i in range(5)}
        points = await store.list_rule_points(w)
        assert points == {f"r{i}": [RulePoint(10.0 + i, 2.0, Verdict.FIRING)] for i in range(5)}
