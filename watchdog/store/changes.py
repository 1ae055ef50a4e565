"""Windows read by when they last changed (:class:`~watchdog.store.feed.WindowChanges`),
mixed into both stores.

Every write that changes a window sets its ``updated_at`` (the writer's clock); the
``(phase, updated_at)`` index answers the read one range per phase.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from watchdog.foundation.model import Window, WindowPhase
from watchdog.store import rows

# Every phase, so each query names the phase the index leads with (a range per phase
# instead of a scan of the whole table).
_PHASES = [p.value for p in WindowPhase]


class SqliteChanges:
    """:class:`~watchdog.store.feed.WindowChanges` on SQLite."""

    def _session(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

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
    """:class:`~watchdog.store.feed.WindowChanges` on PostgreSQL."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

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
