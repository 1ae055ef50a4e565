"""Retention on both stores: delete what is older than the retention, one bounded batch at a time.

A closed window (terminal phase) last changed before the cut goes with everything
keyed by it: its journal, rule states, rule points, action log entry, outbox rows and
thread references. Independently, delivered or dead outbox rows and alerts not seen
since the cut go. Each call deletes at most ``windows`` windows and ``rows`` outbox rows
and alerts, so a large backlog is worked off over many runs without long locks. The
fence row is never touched: fencing tokens must stay monotonic.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from watchdog.foundation.model import TERMINAL_PHASES
from watchdog.store.base import OutboxStatus

# Tables keyed by window_id, children first. (events, rule_states and rule_samples
# would cascade; deleting them explicitly keeps the counts and works without FKs.)
WINDOW_TABLES = ("events", "rule_states", "rule_samples", "actions", "outbox", "notify_threads")
_TERMINAL = sorted(p.value for p in TERMINAL_PHASES)
_DONE = [OutboxStatus.SENT.value, OutboxStatus.FAILED.value]

_SQLITE_OLD_WINDOWS = (
    "SELECT id FROM windows WHERE phase IN (SELECT value FROM json_each(?1))"
    " AND updated_at < ?2 ORDER BY updated_at LIMIT ?3"
)
_SQLITE_DELETE = {  # table → DELETE of the rows of the windows in ?1 (a JSON list)
    t: f"DELETE FROM {t} WHERE window_id IN (SELECT value FROM json_each(?1))"  # noqa: S608
    for t in WINDOW_TABLES
}
_SQLITE_DELETE["windows"] = "DELETE FROM windows WHERE id IN (SELECT value FROM json_each(?1))"
_SQLITE_OUTBOX = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN"
    " (SELECT value FROM json_each(?1)) AND created_at < ?2 ORDER BY id LIMIT ?3)"
)
_SQLITE_ALERTS = (
    "DELETE FROM alerts WHERE rowid IN"
    " (SELECT rowid FROM alerts WHERE last_seen < ?1 ORDER BY last_seen LIMIT ?2)"
)

_PG_OLD_WINDOWS = (
    "SELECT id FROM windows WHERE phase = ANY($1::text[]) AND updated_at < $2"
    " ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED"
)
_PG_DELETE = {
    t: f"DELETE FROM {t} WHERE window_id = ANY($1::text[])"  # noqa: S608
    for t in WINDOW_TABLES
}
_PG_DELETE["windows"] = "DELETE FROM windows WHERE id = ANY($1::text[])"
_PG_OUTBOX = (
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = ANY($1::text[])"
    " AND created_at < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)"
)
_PG_ALERTS = (
    "DELETE FROM alerts WHERE (fingerprint, starts_at) IN (SELECT fingerprint, starts_at"
    " FROM alerts WHERE last_seen < $1 ORDER BY last_seen LIMIT $2 FOR UPDATE SKIP LOCKED)"
)


def _count(status: str) -> int:
    """Rows affected, from asyncpg's command tag (``DELETE 12``)."""
    return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0


class SqlitePruner:
    """``prune`` for :class:`~watchdog.store.sqlite.SqliteStore`."""

    def _tx(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by SqliteStore

    async def prune(self, *, before: float, windows: int, rows: int) -> dict[str, int]:
        """Delete one batch older than ``before``; rows deleted, by table."""
        done: dict[str, int] = {}
        async with self._tx() as db:
            found = await db.execute_fetchall(
                _SQLITE_OLD_WINDOWS, (json.dumps(_TERMINAL), before, windows)
            )
            ids = json.dumps([r[0] for r in found])
            for table, sql in _SQLITE_DELETE.items():
                done[table] = (await db.execute(sql, (ids,))).rowcount
        async with self._tx() as db:
            cur = await db.execute(_SQLITE_OUTBOX, (json.dumps(_DONE), before, rows))
            done["outbox"] += cur.rowcount
            done["alerts"] = (await db.execute(_SQLITE_ALERTS, (before, rows))).rowcount
        return done


class PostgresPruner:
    """``prune`` for :class:`~watchdog.store.postgres.PostgresStore`."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def prune(self, *, before: float, windows: int, rows: int) -> dict[str, int]:
        """Delete one batch older than ``before``; rows deleted, by table.

        ``SKIP LOCKED``: replicas pruning at once take different rows, never wait.
        """
        done: dict[str, int] = {}
        async with self._conn() as conn:
            async with conn.transaction():
                found = await conn.fetch(_PG_OLD_WINDOWS, _TERMINAL, before, windows)
                ids = [r["id"] for r in found]
                for table, sql in _PG_DELETE.items():
                    done[table] = _count(await conn.execute(sql, ids))
            async with conn.transaction():
                done["outbox"] += _count(await conn.execute(_PG_OUTBOX, _DONE, before, rows))
                done["alerts"] = _count(await conn.execute(_PG_ALERTS, before, rows))
        return done
