"""The action log, the fence and rollback requests on PostgreSQL (mixed into
:class:`~watchdog.store.postgres.PostgresStore`).

The single ``fence`` row holds the newest fencing token issued or accepted. Issuing
(:meth:`advance_fence`) and every fenced write lock it, so a write carrying a token
older than the newest issued is refused even when the newer leader has written nothing
yet.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from watchdog.foundation.errors import FencedOut, NotFound
from watchdog.foundation.model import ActionRecord, ActionStatus
from watchdog.store import rows
from watchdog.store.base import RollbackRequest


class PostgresFence:
    """Fenced action-log writes; the store supplies the connection."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def store_time(self) -> float:
        """PostgreSQL's clock (``clock_timestamp()``, not the transaction's ``now()``)."""
        async with self._conn() as conn:
            return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))

    async def advance_fence(self, candidate: int) -> int:
        """Issue a token above every one issued or accepted, and at least ``candidate``."""
        async with self._conn() as conn:
            token = await conn.fetchval(
                "UPDATE fence SET max_token = GREATEST(max_token + 1, $1) WHERE id = 1"
                " RETURNING max_token",
                candidate,
            )
        return int(token)

    async def claim_action(
        self, window_id: str, action: str, *, token: int, actor: str, at: float
    ) -> bool:
        """Claim an action once, ever; :class:`FencedOut` for a token older than the fence."""
        async with self._conn() as conn, conn.transaction():
            await _check(conn, token, "FOR UPDATE")
            won = await conn.fetchval(
                "INSERT INTO actions (window_id, action, status, token, actor, claimed_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true",
                window_id,
                action,
                ActionStatus.CLAIMED.value,
                token,
                actor,
                at,
            )
            if won is None:
                return False
            await conn.execute(
                "UPDATE fence SET max_token = GREATEST(max_token, $1) WHERE id = 1", token
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
        async with self._conn() as conn, conn.transaction():
            # FOR SHARE: an acquisition (which updates the row) waits for this write.
            await _check(conn, token, "FOR SHARE")
            result = await conn.execute(
                "UPDATE actions SET status = $1, finished_at = $2, detail = $3"
                " WHERE window_id = $4 AND action = $5",
                status.value,
                at,
                detail,
                window_id,
                action,
            )
        if result.rsplit(" ", 1)[-1] == "0":
            raise NotFound(f"action {action!r} of window {window_id!r} was never claimed")

    async def get_action(self, window_id: str, action: str) -> ActionRecord | None:
        """The action log entry, or None."""
        async with self._conn() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM actions WHERE window_id = $1 AND action = $2", window_id, action
            )
        return None if row is None else rows.action_from_row(row)

    async def request_rollback(self, request: RollbackRequest) -> bool:
        """Keep a manual rollback for the leader; False if one is already waiting."""
        async with self._conn() as conn:
            won = await conn.fetchval(
                "INSERT INTO rollback_requests (window_id, actor, reason, approved_by, at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                *rows.request_params(request),
            )
        return won is not None

    async def take_rollback_requests(self, *, limit: int = 100) -> list[RollbackRequest]:
        """Remove and return waiting requests, oldest first (the leader runs them)."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "DELETE FROM rollback_requests WHERE window_id IN (SELECT window_id"
                " FROM rollback_requests ORDER BY at LIMIT $1 FOR UPDATE SKIP LOCKED)"
                " RETURNING *",
                limit,
            )
        return sorted((rows.request_from_row(r) for r in found), key=lambda r: r.at)


_LOCKS = {
    "FOR UPDATE": "SELECT max_token FROM fence WHERE id = 1 FOR UPDATE",
    "FOR SHARE": "SELECT max_token FROM fence WHERE id = 1 FOR SHARE",
}


async def _check(conn: Any, token: int, lock: str) -> None:
    newest = int(await conn.fetchval(_LOCKS[lock]))
    if token < newest:
        raise FencedOut(token, newest)
