"""Keys seen once and status sessions on PostgreSQL (mixed into
:class:`~watchdog.store.postgres.PostgresStore`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from watchdog.store.ephemeral import PRUNE_BATCH, SessionCaps


class PostgresEphemeral:
    """:class:`~watchdog.store.ephemeral.SeenOnce` and ``Sessions``; the store supplies
    the connection."""

    def _conn(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError  # provided by PostgresStore

    async def seen_once(self, key: str, *, now: float, ttl: float) -> bool:
        """True for a live key seen before; else record it and return False."""
        async with self._conn() as conn:
            await _prune(conn, "seen_once", "key", now)
            # Inserted, or an expired row taken over: a row comes back. A live row
            # (another replica or an earlier process saw this key) returns nothing.
            won = await conn.fetchval(
                "INSERT INTO seen_once (key, expires_at) VALUES ($1, $2)"
                " ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at"
                " WHERE seen_once.expires_at <= $3 RETURNING true",
                key,
                now + ttl,
                now,
            )
        return not won

    async def create_session(
        self, id_hash: str, *, token_tag: str, now: float, expires_at: float, keep: SessionCaps
    ) -> None:
        """Store a new session until ``expires_at``; the oldest beyond ``keep`` end
        (two replicas signing in at once may overshoot by one each, briefly)."""
        async with self._conn() as conn:
            await _prune(conn, "status_sessions", "id_hash", now)
            await conn.execute(
                "INSERT INTO status_sessions (id_hash, token_tag, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                id_hash,
                token_tag,
                now,
                expires_at,
            )
            # Newest first, then the id: which of two same-instant sessions goes is fixed.
            await conn.execute(
                "DELETE FROM status_sessions WHERE id_hash IN (SELECT id_hash FROM"
                " status_sessions WHERE token_tag = $1 ORDER BY created_at DESC, id_hash"
                " OFFSET $2)",
                token_tag,
                keep.per_tag,
            )
            await conn.execute(
                "DELETE FROM status_sessions WHERE id_hash IN (SELECT id_hash FROM"
                " status_sessions ORDER BY created_at DESC, id_hash OFFSET $1)",
                keep.total,
            )

    async def session_tag(self, id_hash: str, *, now: float) -> str | None:
        """The token tag of a live session, or None."""
        async with self._conn() as conn:
            found = await conn.fetchval(
                "SELECT token_tag FROM status_sessions WHERE id_hash = $1 AND expires_at > $2",
                id_hash,
                now,
            )
        return None if found is None else str(found)

    async def revoke_sessions(self, id_hash: str | None = None) -> int:
        """End one session, or all of them."""
        async with self._conn() as conn:
            if id_hash is None:
                done = await conn.execute("DELETE FROM status_sessions")
            else:
                done = await conn.execute("DELETE FROM status_sessions WHERE id_hash = $1", id_hash)
        return int(str(done).rsplit(" ", 1)[-1])


async def _prune(conn: Any, table: str, key: str, now: float) -> None:
    # Table and column names are ours (never input); a bounded batch per write.
    await conn.execute(
        f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608
        f"(SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT $2)",
        now,
        PRUNE_BATCH,
    )
