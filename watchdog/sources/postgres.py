"""The ``postgres`` source: a read-only SQL query on a named target (asyncpg).

Each target (a name -> DSN from Settings, never from rule files) gets a small pool,
created on first use. A query runs in a read-only transaction with the rule's
statement timeout. Numeric columns are values, other columns labels, so a query may
return one number or rows of ``label -> number`` (each row judged on its own).

Failures are errors, never no data: a refused connection, a server shutting down or a
statement timeout are transient ``Sample.failed`` (the "DB connection failures" rule
sets ``on_error: breach``); a query the server rejects is permanent. A missing
``pg_stat_statements`` is said once in the log with how to install it, and every sample
carries the same short error (the journal records it once, on the transition).

``mode: delta`` and ``delta_ratio`` judge counters on their change: see
:mod:`watchdog.sources.counters`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from watchdog.foundation.model import Sample, Series, series_key
from watchdog.rulefile.schema import PostgresRule
from watchdog.sources.base import Parts, SampleContext, SourceKind, missing_target

if TYPE_CHECKING:
    import asyncpg

# asyncpg is imported where it is used: loading the kinds table (every rule file load)
# must not pay its megabytes of RSS when no rule reads PostgreSQL (bench/footprint.py).
from watchdog.sources.counters import StartPoints, carried, deltas

log = structlog.get_logger("watchdog.sources.postgres")

NUMERIC_TYPES = frozenset({"int2", "int4", "int8", "float4", "float8", "numeric", "oid"})
CONNECT_TIMEOUT = 5.0
POOL_SIZE = 2
STATEMENTS_HINT = (
    "pg_stat_statements is not available on target {target!r}: set "
    "shared_preload_libraries = 'pg_stat_statements', restart PostgreSQL, then run "
    "CREATE EXTENSION pg_stat_statements in the database"
)

Values = dict[str, tuple[float, ...]]
Rows = list[tuple[dict[str, str], tuple[float, ...]]]


class PostgresSource:
    """Runs :class:`PostgresRule` queries against the configured targets."""

    def __init__(self, targets: Mapping[str, str], *, pool_size: int = POOL_SIZE) -> None:
        self._dsns = dict(targets)
        self._pools: dict[str, asyncpg.Pool] = {}
        self._lock = asyncio.Lock()
        self._pool_size = pool_size
        self._points: StartPoints[tuple[Values, Values]] = StartPoints()
        self._said: set[tuple[str, str]] = set()

    async def sample(self, rule: PostgresRule, ctx: SampleContext) -> Sample:
        """Run the rule's query now and read its value the way ``mode`` says."""
        import asyncpg

        if not ctx.live:
            return Sample.failed("postgres queries cannot look back in time", transient=False)
        if rule.target not in self._dsns:
            return Sample.failed(
                f"postgres target {rule.target!r} is not configured", transient=False
            )
        try:
            async with asyncio.timeout(rule.timeout + CONNECT_TIMEOUT):
                rows = await self._query(rule)
        except TimeoutError:
            return Sample.failed(f"no answer from target {rule.target!r} within the timeout")
        except asyncpg.PostgresError as exc:
            return self._rejected(rule, exc)
        except (OSError, asyncpg.InterfaceError) as exc:
            return Sample.failed(f"cannot reach target {rule.target!r}: {_short(exc)}")
        if not rows:
            return Sample.no_data("query returned no rows")
        if rule.mode == "delta_ratio" and len(rows[0][1]) < 2:
            return Sample.failed("mode delta_ratio needs two numeric columns", transient=False)
        if rule.mode == "gauge" and not (rule.standing and ctx.restored):
            return Sample.of(*(Series(v[0], labels) for labels, v in rows))
        return self._changes(rule, ctx, {series_key(lb): v for lb, v in rows}, rows)

    async def close(self) -> None:
        """Close every pool (pending queries are cancelled)."""
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.terminate()

    async def _pool(self, target: str) -> asyncpg.Pool:
        import asyncpg

        async with self._lock:
            pool = self._pools.get(target)
            if pool is None:
                pool = await asyncpg.create_pool(
                    self._dsns[target],
                    min_size=0,
                    max_size=self._pool_size,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=None,
                )
                self._pools[target] = pool
            return pool

    async def _query(self, rule: PostgresRule) -> Rows:
        import asyncpg

        pool = await self._pool(rule.target)
        async with (
            pool.acquire(timeout=CONNECT_TIMEOUT) as conn,
            conn.transaction(readonly=True),
        ):
            # An integer, formatted here: SET takes no bind parameters.
            await conn.execute(f"SET LOCAL statement_timeout = {int(rule.timeout * 1000)}")
            stmt = await conn.prepare(rule.query)
            kinds = [a.type.name in NUMERIC_TYPES for a in stmt.get_attributes()]
            if not any(kinds):
                raise asyncpg.DataError("the query returns no numeric column")
            records = await stmt.fetch()
        return [_row(list(r.items()), kinds) for r in records]

    def _changes(
        self, rule: PostgresRule, ctx: SampleContext, current: Values, rows: Rows
    ) -> Sample:
        # Keyed by where the evidence starts too: after a rollback, counting starts over.
        key = (ctx.window_id, rule.name, ctx.since)
        # The first sample of a window is its start point: a change of zero so far.
        kept = carried(current, {})  # an absurd reading is never a start point
        start, previous = self._points.get(key) or (kept, kept)
        self._points.put(key, (start, carried(current, previous)))
        changed = deltas(current, previous if rule.since == "previous_sample" else start)
        labels = {series_key(lb): lb for lb, _ in rows}
        out = []
        # A standing count, confirming a rollback: the rows added since it.
        mode = "delta" if rule.mode == "gauge" else rule.mode
        for skey, delta in changed.items():
            value = _read(mode, delta)
            if value is not None:
                out.append(Series(value, labels[skey]))
        if not out:
            return Sample.no_data("nothing ran since the start point")
        if rule.mode == "gauge":
            standing = sum(v[0] for v in start.values() if v[0] == v[0])
            return Sample.of(
                *out,
                detail=f"new rows since the rollback; {standing:g} counted at the rollback "
                "stay and still need repair",
            )
        return Sample.of(*out)

    def _rejected(self, rule: PostgresRule, exc: asyncpg.PostgresError) -> Sample:
        import asyncpg

        text = _short(exc)
        if isinstance(exc, asyncpg.QueryCanceledError):
            return Sample.failed(f"statement timeout after {rule.timeout:g}s")
        if isinstance(exc, _connection_errors()):
            return Sample.failed(f"target {rule.target!r} is unavailable: {text}")
        if "pg_stat_statements" in text:
            self._say_once(
                rule.target, "pg_stat_statements", STATEMENTS_HINT.format(target=rule.target)
            )
            return Sample.failed(f"pg_stat_statements is not installed ({text})", transient=False)
        return Sample.failed(f"query rejected by target {rule.target!r}: {text}", transient=False)

    def _say_once(self, target: str, what: str, message: str) -> None:
        if (target, what) not in self._said:
            self._said.add((target, what))
            log.warning(message, target=target)


def _connection_errors() -> tuple[type[Exception], ...]:
    import asyncpg

    return (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.TooManyConnectionsError,
    )


def _row(
    items: list[tuple[str, Any]], numeric: list[bool]
) -> tuple[dict[str, str], tuple[float, ...]]:
    labels: dict[str, str] = {}
    values: list[float] = []
    for (name, value), is_number in zip(items, numeric, strict=True):
        if is_number:
            values.append(math.nan if value is None else float(value))
        else:
            labels[name] = "" if value is None else str(value)
    return labels, tuple(values)


def _read(mode: str, delta: tuple[float, ...]) -> float | None:
    if mode == "delta":
        return delta[0]
    if len(delta) < 2 or not delta[1] > 0:
        return None  # nothing ran: no average to judge
    return delta[0] / delta[1]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _build(p: Parts) -> PostgresSource | None:
    targets = p.settings.postgres_targets
    if not targets:  # rules naming a target are refused unless it is configured
        return None
    return PostgresSource({k: v.get_secret_value() for k, v in targets.items()})


KIND = SourceKind(
    name="postgres", rule=PostgresRule, build=_build,
    unconfigured=lambda rule, s: missing_target(
        rule, s.postgres_targets, "WATCHDOG_POSTGRES_TARGETS"
    ),
    blind=lambda rule: f"postgres target {rule.target}", replay=None, graph=None,
    title="PostgreSQL",
)  # fmt: skip
