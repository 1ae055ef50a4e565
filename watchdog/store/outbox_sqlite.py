"""The notification outbox on SQLite (mixed into :class:`~watchdog.store.sqlite.SqliteStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import aiosqlite

from watchdog.store import rows
from watchdog.store.base import OutboxItem, OutboxStatus


class SqliteOutbox:
    """Outbox and thread-reference methods; the store supplies the connection."""

    def _session(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    async def enqueue_notifications(self, items: Sequence[OutboxItem]) -> int:
        """Store notifications; a (channel, event) pair already stored is skipped."""
        added = 0
        async with self._session() as db:
            for item in items:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO outbox (window_id, channel, event_seq, payload, status,"
                    " attempts, due_at, created_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows.outbox_params(item),
                )
                added += cur.rowcount
        return added

    async def pending_notifications(self, *, limit: int = 100) -> list[OutboxItem]:
        """Undelivered notifications, oldest first."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT * FROM outbox WHERE status = ? ORDER BY id LIMIT ?",
                (OutboxStatus.PENDING.value, limit),
            )
        return [rows.outbox_from_row(r) for r in found]

    async def claim_notification(
        self, item_id: int, *, owner: str, now: float, until: float
    ) -> bool:
        """Take a pending row until ``until`` unless another owner's claim still holds."""
        async with self._session() as db:
            cur = await db.execute(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?"
                " AND status = ? AND (claimed_by IS NULL OR claimed_by = ?"
                " OR claimed_until <= ?)",
                (owner, until, item_id, OutboxStatus.PENDING.value, owner, now),
            )
            return cur.rowcount == 1

    async def update_notification(
        self,
        item_id: int,
        *,
        status: OutboxStatus,
        attempts: int,
        due_at: float,
        error: str | None,
    ) -> None:
        """Record a delivery attempt's result and release the claim."""
        async with self._session() as db:
            await db.execute(
                "UPDATE outbox SET status = ?, attempts = ?, due_at = ?, last_error = ?,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                (status.value, attempts, due_at, error, item_id),
            )

    async def get_thread(self, window_id: str, channel: str) -> str | None:
        """The reference a channel keeps for a window."""
        async with self._session() as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT ref FROM notify_threads WHERE window_id = ? AND channel = ?",
                    (window_id, channel),
                )
            )
        return str(found[0][0]) if found else None

    async def set_thread(self, window_id: str, channel: str, ref: str) -> None:
        """Remember a channel's reference for a window (first one wins)."""
        async with self._session() as db:
            await db.execute(
                "INSERT OR IGNORE INTO notify_threads (window_id, channel, ref) VALUES (?, ?, ?)",
                (window_id, channel, ref),
            )
