"""The action log, the fence and rollback requests on SQLite (mixed into
:class:`~watchdog.store.sqlite.SqliteStore`). Writes run in ``BEGIN IMMEDIATE``
transactions, so a check of the fence and the write it guards cannot be split."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

import aiosqlite

from watchdog.foundation.errors import FencedOut, NotFound
from watchdog.foundation.model import ActionRecord, ActionStatus
from watchdog.store import rows
from watchdog.store.base import RollbackRequest


class SqliteFence:
    """Fenced action-log writes; the store supplies the connection."""

    def _session(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    def _tx(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    async def store_time(self) -> float:
        """One node, one clock: ours (a query first, so an unreachable file says so)."""
        async with self._tx() as db:
            await db.execute("SELECT 1")
        return time.time()

    async def advance_fence(self, candidate: int) -> int:
        """Issue a token above every one issued or accepted, and at least ``candidate``."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE fence SET max_token = max(max_token + 1, ?) WHERE id = 1", (candidate,)
            )
            return await _newest(db)

    async def claim_action(
        self, window_id: str, action: str, *, token: int, actor: str, at: float
    ) -> bool:
        """Claim an action once, ever; :class:`FencedOut` for a token older than the fence."""
        async with self._tx() as db:
            await _check(db, token)
            cur = await db.execute(
                "INSERT OR IGNORE INTO actions (window_id, action, status, token, actor,"
                " claimed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (window_id, action, ActionStatus.CLAIMED.value, token, actor, at),
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "UPDATE fence SET max_token = max(max_token, ?) WHERE id = 1", (token,)
            )
            return True

    async def finish_action(
        self,
        window_id: str,
        action: str,
        *,
        status: ActionStatus,
        at: float,
        detail: str | None,
        token: int,
    ) -> None:
        """Record how a claimed action ended, fenced by ``token``."""
        async with self._tx() as db:
            await _check(db, token)
            cur = await db.execute(
                "UPDATE actions SET status = ?, finished_at = ?, detail = ?"
                " WHERE window_id = ? AND action = ?",
                (status.value, at, detail, window_id, action),
            )
            if cur.rowcount == 0:
                raise NotFound(f"action {action!r} of window {window_id!r} was never claimed")

    async def get_action(self, window_id: str, action: str) -> ActionRecord | None:
        """The action log entry, or None."""
        async with self._session() as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT * FROM actions WHERE window_id = ? AND action = ?",
                    (window_id, action),
                )
            )
        return rows.action_from_row(found[0]) if found else None

    async def request_rollback(self, request: RollbackRequest) -> bool:
        """Keep a manual rollback for the leader; False if one is already waiting."""
        async with self._session() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO rollback_requests (window_id, actor, reason,"
                " approved_by, at) VALUES (?, ?, ?, ?, ?)",
                rows.request_params(request),
            )
            return cur.rowcount == 1

    async def take_rollback_requests(self, *, limit: int = 100) -> list[RollbackRequest]:
        """Remove and return waiting requests, oldest first (the leader runs them)."""
        async with self._session() as db:  # every tick asks: no write lock when empty
            waiting = list(await db.execute_fetchall("SELECT 1 FROM rollback_requests LIMIT 1"))
        if not waiting:
            return []
        async with self._tx() as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT * FROM rollback_requests ORDER BY at LIMIT ?", (limit,)
                )
            )
            for row in found:
                await db.execute(
                    "DELETE FROM rollback_requests WHERE window_id = ?", (row["window_id"],)
                )
        return [rows.request_from_row(r) for r in found]


async def _newest(db: aiosqlite.Connection) -> int:
    found = list(await db.execute_fetchall("SELECT max_token FROM fence WHERE id = 1"))
    return int(found[0][0])


async def _check(db: aiosqlite.Connection, token: int) -> None:
    newest = await _newest(db)
    if token < newest:
        raise FencedOut(token, newest)
