"""The high-availability store: PostgreSQL through a small asyncpg pool.

Several watchdog replicas may share one database. Every check-then-write runs in one
transaction: the action claim locks the single fence row (``SELECT … FOR UPDATE``) so
claims are serialised, and ``INSERT … ON CONFLICT DO NOTHING`` leaves exactly one winner.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from watchdog.foundation.errors import Conflict, NotFound, PermanentError, TransientError
from watchdog.foundation.model import Event, EventKind, RuleState, Window, WindowPhase
from watchdog.store import migrate, rows
from watchdog.store.alert_access import PostgresAlerts
from watchdog.store.base import KEEP_POINTS, PRUNE_EVERY, READ_POINTS, RulePoint
from watchdog.store.changes import PostgresChanges, postgres_append
from watchdog.store.ephemeral_postgres import PostgresEphemeral
from watchdog.store.fence_postgres import PostgresFence
from watchdog.store.outbox_postgres import PostgresOutbox
from watchdog.store.prune import PostgresPruner

# Key of the advisory lock that keeps replicas from migrating at the same time.
_MIGRATION_LOCK = 0x77617463_68646F67

_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


class PostgresStore(
    PostgresAlerts,
    PostgresFence,
    PostgresOutbox,
    PostgresEphemeral,
    PostgresPruner,
    PostgresChanges,
):
    """The :class:`~watchdog.store.base.Store` on PostgreSQL (asyncpg pool)."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 5,
        command_timeout: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._pool_args: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "command_timeout": command_timeout,
            "timeout": connect_timeout,
        }
        self._acquire_timeout = command_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._points = rows.PruneSchedule(PRUNE_EVERY)

    async def open(self) -> None:
        """Create the pool and apply pending migrations."""
        if self._pool is not None:
            return
        with _translated():
            self._pool = await asyncpg.create_pool(self._dsn, **self._pool_args)
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(migrate.SCHEMA_TABLE_SQL.format(real="double precision"))
            found = await conn.fetch("SELECT version FROM schema_migrations")
            applied = {int(r["version"]) for r in found}
            for m in migrate.pending(migrate.load("postgres"), applied):
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    m.version,
                    time.time(),
                )

    async def applied_migrations(self) -> list[int]:
        """Versions recorded in ``schema_migrations``, ascending."""
        async with self._conn() as conn:
            found = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(r["version"]) for r in found]

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        """A pooled connection, with driver errors translated."""
        if self._pool is None:
            raise PermanentError("the PostgreSQL store is not open")
        with _translated():
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn

    async def insert_window(self, window: Window) -> None:
        """Store a new window; :class:`Conflict` when the id is taken."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO windows (id, service, environment, version, previous_version,"
                " labels, plan, phase, started_at, ends_at, updated_at, reason, baselines,"
                " shadow, confirm_for)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                *rows.window_params(window),
            )

    async def get_window(self, window_id: str) -> Window | None:
        """One window, or None."""
        async with self._conn() as conn:
            row = await conn.fetchrow("SELECT * FROM windows WHERE id = $1", window_id)
        return None if row is None else rows.window_from_row(row)

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first, filtered."""
        wanted = None if phases is None else [p.value for p in phases]
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT * FROM windows"
                " WHERE ($1::text IS NULL OR service = $1)"
                " AND ($2::text IS NULL OR environment = $2)"
                " AND ($3::text[] IS NULL OR phase = ANY($3::text[]))"
                " ORDER BY started_at DESC, id DESC LIMIT $4",
                service,
                environment,
                wanted,
                limit,
            )
        return [rows.window_from_row(r) for r in found]

    async def set_phase(
        self,
        window_id: str,
        phase: WindowPhase,
        *,
        at: float,
        reason: str | None = None,
        expected: Collection[WindowPhase] | None = None,
    ) -> bool:
        """Compare-and-set the phase; False when the window is not in ``expected``."""
        wanted = None if expected is None else [p.value for p in expected]
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE windows SET phase = $1, updated_at = $2, reason = $3"
                " WHERE id = $4 AND ($5::text[] IS NULL OR phase = ANY($5::text[]))",
                phase.value,
                at,
                reason,
                window_id,
                wanted,
            )
        return _affected(status) == 1

    async def set_baselines(
        self, window_id: str, baselines: Mapping[str, Mapping[str, float]], *, at: float
    ) -> None:
        """Record the baselines captured at window start; :class:`NotFound` if no window."""
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE windows SET baselines = $1, updated_at = $2 WHERE id = $3",
                rows.dumps(baselines),
                at,
                window_id,
            )
        if _affected(status) == 0:
            raise NotFound(f"no window {window_id!r}")

    async def save_rule_state(self, window_id: str, rule: str, state: RuleState) -> None:
        """Upsert one rule's state for a window."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO rule_states (window_id, rule, state) VALUES ($1, $2, $3)"
                " ON CONFLICT (window_id, rule) DO UPDATE SET state = excluded.state",
                window_id,
                rule,
                state.to_json(),
            )

    async def load_rule_states(self, window_id: str) -> dict[str, RuleState]:
        """All rule states of a window, by rule name."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT rule, state FROM rule_states WHERE window_id = $1", window_id
            )
        return {str(r["rule"]): RuleState.from_json(r["state"]) for r in found}

    async def add_rule_point(self, window_id: str, rule: str, point: RulePoint) -> None:
        """Append one evaluation to the rule's series; now and then prune to KEEP_POINTS."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO rule_samples (window_id, rule, at, value, verdict, evidence)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                window_id,
                rule,
                point.at,
                point.value,
                point.verdict.value,
                rows.point_evidence_out(point),
            )
            if self._points.due((window_id, rule)):
                await conn.execute(
                    rows.PRUNE_POINTS.format("$1", "$2", "$3"), window_id, rule, KEEP_POINTS - 1
                )

    async def list_rule_points(
        self, window_id: str, *, limit: int = READ_POINTS
    ) -> dict[str, list[RulePoint]]:
        """Each rule's newest ``limit`` points, oldest first."""
        async with self._conn() as conn:
            found = await conn.fetch(rows.NEWEST_POINTS.format("$1", "$2"), window_id, limit)
        return rows.points_by_rule(list(found))

    async def append_event(self, event: Event) -> Event:
        """Append to the journal; returns the event with its ``seq``."""
        async with self._conn() as conn:
            return await postgres_append(conn, event)

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        """A window's journal in order, from just after ``after_seq``."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT * FROM events WHERE window_id = $1 AND seq > $2 ORDER BY seq",
                window_id,
                after_seq,
            )
        return [rows.event_from_row(r) for r in found]

    async def last_event_seq(self) -> int:
        """The newest event's ``seq``; 0 while the journal is empty."""
        async with self._conn() as conn:
            return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM events"))

    async def list_events_after(
        self, after_seq: int, *, kinds: Collection[EventKind], limit: int
    ) -> list[Event]:
        """Events of any window after ``after_seq`` of the given kinds, by ``seq``."""
        async with self._conn() as conn:
            found = await conn.fetch(
                "SELECT * FROM events WHERE seq > $1 AND kind = ANY($2::text[])"
                " ORDER BY seq LIMIT $3",
                after_seq,
                [k.value for k in kinds],
                limit,
            )
        return [rows.event_from_row(r) for r in found]


def _affected(status: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 1``."""
    return int(status.rsplit(" ", 1)[-1])


@contextmanager
def _translated() -> Iterator[None]:
    """Turn asyncpg's errors into the watchdog's: lost connections are transient."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"already stored ({exc})") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound(f"no such window ({exc})") from exc
    except _TRANSIENT as exc:
        raise TransientError(f"PostgreSQL store unavailable: {exc}") from exc
