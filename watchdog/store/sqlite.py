"""The embedded store: one SQLite file (WAL mode) through aiosqlite.

One connection per store; an asyncio lock keeps this process's coroutines from
interleaving statements on it, and ``BEGIN IMMEDIATE`` serialises writers across
connections and processes (SQLite's busy timeout makes the loser wait, not fail).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import aiosqlite

from watchdog.foundation.errors import Conflict, NotFound, PermanentError, TransientError
from watchdog.foundation.model import Event, EventKind, RuleState, Window, WindowPhase
from watchdog.store import migrate, rows
from watchdog.store.alert_access import SqliteAlerts
from watchdog.store.base import KEEP_POINTS, PRUNE_EVERY, READ_POINTS, RulePoint
from watchdog.store.changes import SqliteChanges, sqlite_append
from watchdog.store.ephemeral_sqlite import SqliteEphemeral
from watchdog.store.evaluations_sqlite import SqliteEvaluations
from watchdog.store.fence_sqlite import SqliteFence
from watchdog.store.outbox_sqlite import SqliteOutbox
from watchdog.store.prune import SqlitePruner

MEMORY = ":memory:"


class SqliteStore(
    SqliteAlerts,
    SqliteFence,
    SqliteOutbox,
    SqliteEphemeral,
    SqlitePruner,
    SqliteEvaluations,
    SqliteChanges,
):
    """The :class:`~watchdog.store.base.Store` on a SQLite file (or ``":memory:"``)."""

    def __init__(self, path: str, *, busy_timeout: float = 10.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # a count per series: 10,000 windows x 10 rules must not clear it on every write
        self._points = rows.PruneSchedule(PRUNE_EVERY, limit=250_000)

    async def open(self) -> None:
        """Connect, switch to WAL and apply pending migrations."""
        if self._db is not None:
            return
        if self.path != MEMORY:
            await asyncio.to_thread(Path(self.path).parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._busy_timeout)
        db.row_factory = aiosqlite.Row
        await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        self._db = db
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def _migrate(self) -> None:
        async with self._tx() as db:
            await db.execute(migrate.SCHEMA_TABLE_SQL.format(real="REAL"))
            found = await db.execute_fetchall("SELECT version FROM schema_migrations")
            applied = {int(r[0]) for r in found}
            for m in migrate.pending(migrate.load("sqlite"), applied):
                for statement in migrate.split_statements(m.sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (m.version, time.time()),
                )

    async def applied_migrations(self) -> list[int]:
        """Versions recorded in ``schema_migrations``, ascending."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT version FROM schema_migrations ORDER BY version"
            )
        return [int(r[0]) for r in found]

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, to this coroutine alone; statements autocommit."""
        if self._db is None:
            raise PermanentError("the SQLite store is not open")
        async with self._lock:
            with _translated():
                yield self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction, taken up front so check-then-write cannot race."""
        async with self._session() as db:
            try:
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Also when cancelled mid-BEGIN: the connection must not stay in a
                # transaction. Statements run in order, so this follows the BEGIN.
                with suppress(sqlite3.OperationalError):  # "no transaction is active"
                    await db.execute("ROLLBACK")
                raise

    async def insert_window(self, window: Window) -> None:
        """Store a new window; :class:`Conflict` when the id is taken."""
        async with self._session() as db:
            await db.execute(
                "INSERT INTO windows (id, service, environment, version, previous_version,"
                " labels, plan, phase, started_at, ends_at, updated_at, reason, baselines,"
                " shadow, confirm_for)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows.window_params(window),
            )

    async def get_window(self, window_id: str) -> Window | None:
        """One window, or None."""
        async with self._session() as db:
            found = list(
                await db.execute_fetchall("SELECT * FROM windows WHERE id = ?", (window_id,))
            )
        return rows.window_from_row(found[0]) if found else None

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first, filtered."""
        wanted = None if phases is None else json.dumps([p.value for p in phases])
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT * FROM windows"
                " WHERE (?1 IS NULL OR service = ?1) AND (?2 IS NULL OR environment = ?2)"
                " AND (?3 IS NULL OR phase IN (SELECT value FROM json_each(?3)))"
                " ORDER BY started_at DESC, id DESC LIMIT ?4",
                (service, environment, wanted, limit),
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
        wanted = None if expected is None else json.dumps([p.value for p in expected])
        async with self._session() as db:
            cur = await db.execute(
                "UPDATE windows SET phase = ?1, updated_at = ?2, reason = ?3"
                " WHERE id = ?4 AND (?5 IS NULL OR phase IN (SELECT value FROM json_each(?5)))",
                (phase.value, at, reason, window_id, wanted),
            )
            return cur.rowcount == 1

    async def set_baselines(
        self, window_id: str, baselines: Mapping[str, Mapping[str, float]], *, at: float
    ) -> None:
        """Record the baselines captured at window start; :class:`NotFound` if no window."""
        async with self._session() as db:
            cur = await db.execute(
                "UPDATE windows SET baselines = ?, updated_at = ? WHERE id = ?",
                (rows.dumps(baselines), at, window_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no window {window_id!r}")

    async def save_rule_state(self, window_id: str, rule: str, state: RuleState) -> None:
        """Upsert one rule's state for a window."""
        async with self._session() as db:
            await db.execute(
                "INSERT INTO rule_states (window_id, rule, state) VALUES (?, ?, ?)"
                " ON CONFLICT (window_id, rule) DO UPDATE SET state = excluded.state",
                (window_id, rule, state.to_json()),
            )

    async def load_rule_states(self, window_id: str) -> dict[str, RuleState]:
        """All rule states of a window, by rule name."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT rule, state FROM rule_states WHERE window_id = ?", (window_id,)
            )
        return {r["rule"]: RuleState.from_json(r["state"]) for r in found}

    async def add_rule_point(self, window_id: str, rule: str, point: RulePoint) -> None:
        """Append one evaluation to the rule's series; now and then prune to KEEP_POINTS."""
        async with self._session() as db:
            await db.execute(
                "INSERT INTO rule_samples (window_id, rule, at, value, verdict, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    window_id,
                    rule,
                    point.at,
                    point.value,
                    point.verdict.value,
                    rows.point_evidence_out(point),
                ),
            )
            if self._points.due((window_id, rule)):
                await db.execute(
                    rows.PRUNE_POINTS.format("?1", "?2", "?3"), (window_id, rule, KEEP_POINTS - 1)
                )

    async def list_rule_points(
        self, window_id: str, *, limit: int = READ_POINTS
    ) -> dict[str, list[RulePoint]]:
        """Each rule's newest ``limit`` points, oldest first."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                rows.NEWEST_POINTS.format("?1", "?2"), (window_id, limit)
            )
        return rows.points_by_rule(list(found))

    async def append_event(self, event: Event) -> Event:
        """Append to the journal; returns the event with its ``seq``."""
        async with self._session() as db:
            return await sqlite_append(db, event)

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        """A window's journal in order, from just after ``after_seq``."""
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT * FROM events WHERE window_id = ? AND seq > ? ORDER BY seq",
                (window_id, after_seq),
            )
        return [rows.event_from_row(r) for r in found]

    async def last_event_seq(self) -> int:
        """The newest event's ``seq``; 0 while the journal is empty."""
        async with self._session() as db:
            found = list(await db.execute_fetchall("SELECT coalesce(max(seq), 0) FROM events"))
        return int(found[0][0])

    async def list_events_after(
        self, after_seq: int, *, kinds: Collection[EventKind], limit: int
    ) -> list[Event]:
        """Events of any window after ``after_seq`` of the given kinds, by ``seq``."""
        wanted = json.dumps([k.value for k in kinds])
        async with self._session() as db:
            found = await db.execute_fetchall(
                "SELECT * FROM events WHERE seq > ?1"
                " AND kind IN (SELECT value FROM json_each(?2)) ORDER BY seq LIMIT ?3",
                (after_seq, wanted, limit),
            )
        return [rows.event_from_row(r) for r in found]


@contextmanager
def _translated() -> Iterator[None]:
    """Turn SQLite's errors into the watchdog's: busy is transient, constraints are not."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        text = str(exc)
        if "FOREIGN KEY" in text:
            raise NotFound(f"no such window ({text})") from exc
        if "UNIQUE" in text:
            raise Conflict(f"already stored ({text})") from exc
        raise
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise TransientError(f"SQLite store busy: {exc}") from exc
        raise
