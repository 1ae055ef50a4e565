"""Every evaluation's two writes (rule state, rule point), grouped into few transactions.

With 10,000 windows x 10 rules every 15 s the engine finishes ~6,700 evaluations a
second; written one statement at a time, each a trip to the store's thread and a
commit of its own, the writes alone took more than a core (bench/scale.py). The
:class:`WriteBatcher` collects the writes of evaluations that finish while the previous
batch is being written and hands them to the store in one call; a store without
:class:`EvaluationBatches` gets them one by one, as before. A caller's ``record``
returns once its own writes are stored (or raises what the store raised), so an
evaluation never journals or decides on a state that is not saved yet. A batch the
store refuses (all or none) is written again one evaluation at a time, so that one bad
write (its window deleted meanwhile) fails only its own evaluation.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from watchdog.foundation.model import RuleState
from watchdog.store.base import RulePoint, RuleStateStore

MAX_BATCH = 2_000  # writes per store call: bounds one transaction's time and memory


@dataclass(frozen=True)
class EvaluationWrite:
    """What one evaluation stores: the rule's new state and the point it adds."""

    window_id: str
    rule: str
    state: RuleState
    point: RulePoint


@runtime_checkable
class EvaluationBatches(Protocol):
    """A store that writes many evaluations in one transaction."""

    async def record_evaluations(self, writes: Sequence[EvaluationWrite]) -> None:
        """Save every state and add every point of ``writes``, all or none."""
        ...


@dataclass
class _Batch:
    writes: list[EvaluationWrite] = field(default_factory=list)
    task: asyncio.Task[bool] | None = None
    # every writer waits on the event: a writer cancelled stops only its own wait
    # (a shield per writer cost a future and two callbacks per evaluation)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ok: bool = False
    cancelled: bool = False


def _settled(batch: _Batch, task: asyncio.Task[bool]) -> None:
    """The batch's task ended (even cancelled before it ran): wake every writer."""
    batch.cancelled = task.cancelled()
    batch.ok = not batch.cancelled and task.exception() is None and task.result()
    batch.done.set()


class Pending:
    """One evaluation's writes, queued: :meth:`saved` returns once they are stored."""

    __slots__ = ("_batch", "_store", "_write")

    def __init__(self, store: RuleStateStore, write: EvaluationWrite, batch: _Batch | None):
        self._store, self._write, self._batch = store, write, batch

    async def saved(self) -> None:
        """Wait until the writes are stored (or raise what the store raised)."""
        batch, write = self._batch, self._write
        if batch is not None:
            await batch.done.wait()  # set already: no suspension
            if batch.cancelled:  # shutting down: as the batch's task was, so is each writer
                raise asyncio.CancelledError
            if batch.ok:
                return
        store = self._store
        await store.save_rule_state(write.window_id, write.rule, write.state)
        await store.add_rule_point(write.window_id, write.rule, write.point)


class WriteBatcher:
    """Groups the engine's per-evaluation writes; one batch is written at a time."""

    def __init__(self, store: RuleStateStore) -> None:
        self._store = store
        self._batches = store if isinstance(store, EvaluationBatches) else None
        self._open: _Batch | None = None
        self._writing = asyncio.Lock()

    async def record(self, window_id: str, rule: str, state: RuleState, point: RulePoint) -> None:
        """Store one evaluation's state and point; returns once they are written."""
        await self.queue(window_id, rule, state, point).saved()

    def queue(self, window_id: str, rule: str, state: RuleState, point: RulePoint) -> Pending:
        """Queue one evaluation's writes in the open batch; the caller awaits
        :meth:`Pending.saved` before it journals or decides on them. Many evaluations
        judged in one task queue theirs and wait once (``Engine``'s shared rules)."""
        write = EvaluationWrite(window_id, rule, state, point)
        if self._batches is None:
            return Pending(self._store, write, None)  # written one by one when awaited
        batch = self._open
        if batch is None or len(batch.writes) >= MAX_BATCH:
            batch = self._open = _Batch()
            batch.task = asyncio.create_task(self._write(batch))
            batch.task.add_done_callback(functools.partial(_settled, batch))
        batch.writes.append(write)
        return Pending(self._store, write, batch)  # a refused batch: written one by one

    async def _write(self, batch: _Batch) -> bool:
        """Write the batch; False when the store refused it (each caller then retries)."""
        assert self._batches is not None
        async with self._writing:  # writes that come meanwhile join this batch
            if self._open is batch:
                self._open = None
            try:
                await self._batches.record_evaluations(batch.writes)
            except Exception:
                return False
            return True
