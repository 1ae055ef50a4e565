"""Keys seen once and status sessions on SQLite (mixed into
:class:`~watchdog.store.sqlite.SqliteStore`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import aiosqlite

from watchdog.store.ephemeral import PRUNE_BATCH, SessionCaps


class SqliteEphemeral:
    """:class:`~watchdog.store.ephemeral.SeenOnce` and ``Sessions``; the store supplies
    the connection."""

    def _session(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    def _tx(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError  # provided by SqliteStore

    async def seen_once(self, key: str, *, now: float, ttl: float) -> bool:
        """True for a live key seen before; else record it and return False."""
        async with self._tx() as db:
            await _prune(db, "seen_once", "key", now)
            await db.execute("DELETE FROM seen_once WHERE key = ? AND expires_at <= ?", (key, now))
            cur = await db.execute(
                "INSERT OR IGNORE INTO seen_once (key, expires_at) VALUES (?, ?)", (key, now + ttl)
            )
            return cur.rowcount == 0

    async def create_session(
        self, id_hash: str, *, token_tag: str, now: float, expires_at: float, keep: SessionCaps
    ) -> None:
        """Store a new session until ``expires_at``; the oldest beyond ``keep`` end."""
        async with self._tx() as db:
            await _prune(db, "status_sessions", "id_hash", now)
            await db.execute(
                "INSERT INTO status_sessions (id_hash, token_tag, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (id_hash, token_tag, now, expires_at),
            )
            # Newest first, then the id: which of two same-instant sessions goes is fixed.
            await db.execute(
                "DELETE FROM status_sessions WHERE id_hash IN (SELECT id_hash FROM"
                " status_sessions WHERE token_tag = ? ORDER BY created_at DESC, id_hash"
                " LIMIT -1 OFFSET ?)",
                (token_tag, keep.per_tag),
            )
            await db.execute(
                "DELETE FROM status_sessions WHERE id_hash IN (SELECT id_hash FROM"
                " status_sessions ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?)",
                (keep.total,),
            )

    async def session_tag(self, id_hash: str, *, now: float) -> str | None:
        """The token tag of a live session, or None."""
        async with self._session() as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT token_tag FROM status_sessions WHERE id_hash = ? AND expires_at > ?",
                    (id_hash, now),
                )
            )
        return str(found[0][0]) if found else None

    async def revoke_sessions(self, id_hash: str | None = None) -> int:
        """End one session, or all of them."""
        async with self._session() as db:
            if id_hash is None:
                cur = await db.execute("DELETE FROM status_sessions")
            else:
                cur = await db.execute("DELETE FROM status_sessions WHERE id_hash = ?", (id_hash,))
            return cur.rowcount


async def _prune(db: aiosqlite.Connection, table: str, key: str, now: float) -> None:
    # Table and column names are ours (never input); a bounded batch per write.
    await db.execute(
        f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608
        f"(SELECT {key} FROM {table} WHERE expires_at <= ? LIMIT ?)",
        (now, PRUNE_BATCH),
    )
