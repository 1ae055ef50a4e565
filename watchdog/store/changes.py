"""Windows read by when they last changed (:class:`~watchdog.store.feed.WindowChanges`),
mixed into both stores.

Every write that changes a window sets its ``updated_at`` (the writer's clock); the
``(phase, updated_at)`` index answers the read one range per phase.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from watchdog.foundation.model import Event, Window, WindowPhase
from watchdog.store import rows

# Every phase, so each query names the phase the index leads with (a range per phase
# instead of a scan of the whole table).
_PHASES = [p.value for p in WindowPhase]


async def sqlite_append(db: aiosqlite.Connection, event: Event) -> Event:
    """Append ``event`` to the journal on ``db`` (in its transaction, if any)."""
    cur = await db.execute(
        "INSERT INTO events (window_id, at, kind, rule, message, data) VALUES (?, ?, ?, ?, ?, ?)",
        rows.event_params(event),
    )
    return rows.with_seq(event, cur.lastrowid)


async def postgres_append(conn: Any, event: Event) -> Event:
    """Append ``event`` to the journal on ``conn`` (in its transaction, if any)."""
    seq = await conn.fetchval(
        "INSERT INTO events (window_id, at, kind, rule, message, data)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        *rows.event_params(event),
    )
    return rows.with_seq(event, seq)


class SqliteChanges:
    """:class:`~watchdog.store.feed.WindowChanges` and ``PhaseJournal`` on SQLite."""

    def _session(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    def _tx(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    async def set_phase_journaled(
        self,
        window_id: str,
        phase: WindowPhase,
        event: Event,
        *,
        expected: Collection[WindowPhase],
        reason: str | None = None,
    ) -> Event | None:
        """The compare-and-set and the event it tells, in one transaction."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE windows SET phase = ?1, updated_at = ?2, reason = ?3"
                " WHERE id = ?4 AND phase IN (SELECT value FROM json_each(?5))",
                (phase.value, event.at, reason, window_id, json.dumps([p.value for p in expected])),
            )
            if cur.rowcount != 1:
                return None
            return await sqlite_append(db, event)

    async def list_windows_changed(self, since: float, *, limit: int) -> list[Window]:
        """Windows changed at or after ``since``, by ``updated_at``."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT * FROM windows WHERE phase IN (SELECT value FROM json_each(?1))"
                " AND updated_at >= ?2 ORDER BY updated_at, id LIMIT ?3",
                (json.dumps(_PHASES), since, limit),
            )
        return [rows.window_from_row(r) for r in found]


class PostgresChanges:
    """:class:`~watchdog.store.feed.WindowChanges` and ``PhaseJournal`` on PostgreSQL."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def set_phase_journaled(
        self,
        window_id: str,
        phase: WindowPhase,
        event: Event,
        *,
        expected: Collection[WindowPhase],
        reason: str | None = None,
    ) -> Event | None:
        """The compare-and-set and the event it tells, in one transaction."""
        async with self._conn() as conn, conn.transaction():
            moved = await conn.fetchval(
                "UPDATE windows SET phase = $1, updated_at = $2, reason = $3"
                " WHERE id = $4 AND phase = ANY($5::text[]) RETURNING id",
                phase.value,
                event.at,
                reason,
                window_id,
                [p.value for p in expected],
            )
            if moved is None:
                return None
            return await postgres_append(conn, event)

    async def list_windows_changed(self, since: float, *, limit: int) -> list[Window]:
        """Windows changed at or after ``since``, by ``updated_at``."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT * FROM windows WHERE phase = ANY($1::text[]) AND updated_at >= $2"
                " ORDER BY updated_at, id LIMIT $3",
                _PHASES,
                since,
                limit,
            )
        return [rows.window_from_row(r) for r in found]
