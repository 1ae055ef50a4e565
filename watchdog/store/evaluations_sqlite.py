"""Many evaluations' writes in one SQLite transaction (mixed into
:class:`~watchdog.store.sqlite.SqliteStore`; see :mod:`watchdog.store.batch`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import aiosqlite

from watchdog.store import rows
from watchdog.store.base import KEEP_POINTS
from watchdog.store.batch import EvaluationWrite


class SqliteEvaluations:
    """``record_evaluations``: three statements for a whole batch."""

    _points: rows.PruneSchedule  # provided by SqliteStore

    def _tx(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    async def record_evaluations(self, writes: Sequence[EvaluationWrite]) -> None:
        """Upsert every state, append every point, prune the series that are due."""
        states = [(w.window_id, w.rule, w.state.to_json()) for w in writes]
        points = [
            (w.window_id, w.rule, w.point.at, w.point.value, w.point.verdict.value,
             rows.point_evidence_out(w.point))
            for w in writes
        ]  # fmt: skip
        due = [(w.window_id, w.rule) for w in writes if self._points.due((w.window_id, w.rule))]
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO rule_states (window_id, rule, state) VALUES (?, ?, ?)"
                " ON CONFLICT (window_id, rule) DO UPDATE SET state = excluded.state",
                states,
            )
            await db.executemany(
                "INSERT INTO rule_samples (window_id, rule, at, value, verdict, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                points,
            )
            if due:
                await db.executemany(
                    rows.PRUNE_POINTS.format("?1", "?2", "?3"),
                    [(window_id, rule, KEEP_POINTS - 1) for window_id, rule in due],
                )
