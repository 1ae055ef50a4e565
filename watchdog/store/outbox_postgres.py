"""The notification outbox on PostgreSQL (mixed into
:class:`~watchdog.store.postgres.PostgresStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from watchdog.store import rows
from watchdog.store.base import OutboxItem, OutboxStatus


class PostgresOutbox:
    """Outbox and thread-reference methods; the store supplies the connection."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def enqueue_notifications(self, items: Sequence[OutboxItem]) -> int:
        """Store notifications; a (channel, event) pair already stored is skipped."""
        added = 0
        async with self._conn() as conn:
            for item in items:
                won = await conn.fetchval(
                    "INSERT INTO outbox (window_id, channel, event_seq, payload, status, attempts,"
                    " due_at, created_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    *rows.outbox_params(item),
                )
                added += 1 if won else 0
        return added

    async def pending_notifications(self, *, limit: int = 100) -> list[OutboxItem]:
        """Undelivered notifications, oldest first."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT * FROM outbox WHERE status = $1 ORDER BY id LIMIT $2",
                OutboxStatus.PENDING.value,
                limit,
            )
        return [rows.outbox_from_row(r) for r in found]

    async def claim_notification(
        self, item_id: int, *, owner: str, now: float, until: float
    ) -> bool:
        """Take a pending row for ``until - now`` seconds unless another owner's claim
        still holds.

        Expiry is set and compared on the store's clock (``clock_timestamp()``), never
        on the replicas': a replica whose clock runs ahead would otherwise see every
        other replica's claim as expired and deliver the same event twice.
        """
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE outbox SET claimed_by = $1,"
                " claimed_until = extract(epoch FROM clock_timestamp()) + $2 WHERE id = $3"
                " AND status = $4 AND (claimed_by IS NULL OR claimed_by = $1"
                " OR claimed_until <= extract(epoch FROM clock_timestamp()))",
                owner,
                max(0.0, until - now),
                item_id,
                OutboxStatus.PENDING.value,
            )
        return bool(status.rsplit(" ", 1)[-1] == "1")

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
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE outbox SET status = $1, attempts = $2, due_at = $3, last_error = $4,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = $5",
                status.value,
                attempts,
                due_at,
                error,
                item_id,
            )

    async def get_thread(self, window_id: str, channel: str) -> str | None:
        """The reference a channel keeps for a window."""
        async with self._conn() as conn:
            ref = await conn.fetchval(
                "SELECT ref FROM notify_threads WHERE window_id = $1 AND channel = $2",
                window_id,
                channel,
            )
        return None if ref is None else str(ref)

    async def set_thread(self, window_id: str, channel: str, ref: str) -> None:
        """Remember a channel's reference for a window (first one wins)."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO notify_threads (window_id, channel, ref) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                window_id,
                channel,
                ref,
            )
