"""WriteBatcher: evaluations that finish together are written in one store call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from watchdog.foundation.model import RuleState, Verdict
from watchdog.store.base import RulePoint
from watchdog.store.batch import EvaluationWrite, WriteBatcher

STATE = RuleState(verdict=Verdict.OK, last_value=0.0)


class BatchingStore:
    """Records what it is asked to write; ``refuse`` makes a batch fail."""

    def __init__(self, refuse: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.single: list[str] = []
        self.refuse = refuse

    async def record_evaluations(self, writes: Sequence[EvaluationWrite]) -> None:
        if any(w.window_id == self.refuse for w in writes):
            raise LookupError("no such window")
        self.batches.append([w.window_id for w in writes])

    async def save_rule_state(self, window_id: str, rule: str, state: RuleState) -> None:
        if window_id == self.refuse:
            raise LookupError("no such window")
        self.single.append(window_id)

    async def load_rule_states(self, window_id: str) -> dict[str, RuleState]:
        return {}

    async def add_rule_point(self, window_id: str, rule: str, point: RulePoint) -> None:
        return None

    async def list_rule_points(
        self, window_id: str, *, limit: int = 0
    ) -> dict[str, list[RulePoint]]:
        return {}


def point() -> RulePoint:
    return RulePoint.of(1.0, 0.0, Verdict.OK)


async def test_writes_of_one_loop_turn_are_one_batch_and_the_next_waits_its_turn() -> None:
    store = BatchingStore()
    writes = WriteBatcher(store)
    first = [writes.record(f"w{i}", "r", STATE, point()) for i in range(50)]
    await asyncio.gather(*first)
    await asyncio.gather(*(writes.record(f"v{i}", "r", STATE, point()) for i in range(3)))
    assert store.batches == [[f"w{i}" for i in range(50)], ["v0", "v1", "v2"]]
    assert store.single == []


async def test_a_refused_batch_is_written_one_by_one_and_only_the_bad_write_fails() -> None:
    store = BatchingStore(refuse="gone")
    writes = WriteBatcher(store)
    done = await asyncio.gather(
        writes.record("w1", "r", STATE, point()),
        writes.record("gone", "r", STATE, point()),
        writes.record("w2", "r", STATE, point()),
        return_exceptions=True,
    )
    assert [type(d) for d in done] == [type(None), LookupError, type(None)]
    assert store.batches == [] and store.single == ["w1", "w2"]


async def test_a_writer_cancelled_while_waiting_stops_only_its_own_wait() -> None:
    """An evaluation cancelled mid-write (a reload, a shutdown of its task) neither
    cancels the batch nor the other evaluations' waits; the batch is written whole."""
    store = BatchingStore()
    writes = WriteBatcher(store)
    first = asyncio.create_task(writes.record("w1", "r", STATE, point()))
    second = asyncio.create_task(writes.record("w2", "r", STATE, point()))
    await asyncio.sleep(0)  # both joined the batch and wait for it
    first.cancel()
    assert (await asyncio.gather(first, second, return_exceptions=True))[1] is None
    assert first.cancelled() and store.batches == [["w1", "w2"]]


async def test_writers_of_a_cancelled_batch_are_cancelled_too() -> None:
    store = BatchingStore()
    gate = asyncio.Event()
    record = store.record_evaluations

    async def stuck(batch: Sequence[EvaluationWrite]) -> None:
        await gate.wait()
        await record(batch)

    store.record_evaluations = stuck  # type: ignore[method-assign]
    writes = WriteBatcher(store)
    writer = asyncio.create_task(writes.record("w1", "r", STATE, point()))
    await asyncio.sleep(0)
    batch = writes._open
    assert batch is not None and batch.task is not None
    batch.task.cancel()
    done = await asyncio.gather(writer, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError) and store.single == []
