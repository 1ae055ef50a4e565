"""PostgresSource against a real PostgreSQL: values, rows, deltas, failures."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import structlog

from tests.servers.common import free_port
from tests.shipped import shipped
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, SampleKind, Verdict
from watchdog.rulefile.schema import PostgresRule
from watchdog.sources.base import SampleContext
from watchdog.sources.postgres import PostgresSource

pytestmark = pytest.mark.integration


def rule(query: str = "SELECT 1", **kw: object) -> PostgresRule:
    data = {"name": "q", "source": "postgres", "target": "app", "query": query, "threshold": "> 0"}
    return PostgresRule.model_validate({**data, **kw})


def ctx(window: str = "w1", *, live: bool = True) -> SampleContext:
    return SampleContext(window_id=window, variables={}, at=time.time(), live=live)


@pytest.fixture
async def source(postgres_dsn: str) -> AsyncIterator[PostgresSource]:
    src = PostgresSource({"app": postgres_dsn})
    yield src
    await src.close()


async def test_one_number_and_rows_of_labels(source: PostgresSource) -> None:
    one = await source.sample(rule("SELECT 42"), ctx())
    assert one.kind is SampleKind.VALUES and [s.value for s in one.series] == [42.0]
    rows = await source.sample(
        rule("SELECT * FROM (VALUES ('a', 1), ('b', 3)) AS t(name, n)"), ctx()
    )
    assert {s.key: s.value for s in rows.series} == {'{name="a"}': 1.0, '{name="b"}': 3.0}
    empty = await source.sample(rule("SELECT 1 WHERE false"), ctx())
    assert empty.kind is SampleKind.NO_DATA


async def test_read_only_and_statement_timeout(source: PostgresSource, postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute("CREATE SEQUENCE s")
    await conn.close()
    write = await source.sample(rule("SELECT nextval('s')"), ctx())
    assert write.kind is SampleKind.ERROR and not write.transient
    assert "read-only transaction" in (write.error or "")
    slow = await source.sample(rule("SELECT 1 FROM pg_sleep(2)", timeout="300ms"), ctx())
    assert slow.kind is SampleKind.ERROR and slow.transient
    assert slow.error == "statement timeout after 0.3s"


async def test_refused_connection_is_an_error_and_unknown_target_permanent() -> None:
    src = PostgresSource({"app": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    try:
        down = await src.sample(rule(), ctx())
        assert down.kind is SampleKind.ERROR and down.transient
        assert "cannot reach target 'app'" in (down.error or "")
        other = await src.sample(rule(target="nope"), ctx())
        assert other.kind is SampleKind.ERROR and not other.transient
        past = await src.sample(rule(), ctx(live=False))
        assert past.kind is SampleKind.ERROR and "look back" in (past.error or "")
    finally:
        await src.close()


async def test_delta_since_window_start_and_since_previous(
    source: PostgresSource, postgres_dsn: str
) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("CREATE TABLE c (n float8); INSERT INTO c VALUES (10)")
        start = rule("SELECT n FROM c", mode="delta")
        prev = rule("SELECT n FROM c", mode="delta", since="previous_sample", name="p")
        assert (await source.sample(start, ctx())).series[0].value == 0.0  # start point
        assert (await source.sample(prev, ctx())).series[0].value == 0.0
        await conn.execute("UPDATE c SET n = 15")
        assert (await source.sample(start, ctx())).series[0].value == 5.0
        assert (await source.sample(prev, ctx())).series[0].value == 5.0
        await conn.execute("UPDATE c SET n = 17")
        assert (await source.sample(start, ctx())).series[0].value == 7.0
        assert (await source.sample(prev, ctx())).series[0].value == 2.0
        # another window has its own start point
        assert (await source.sample(start, ctx("w2"))).series[0].value == 0.0
    finally:
        await conn.close()


async def monitoring_role(conn: asyncpg.Connection, dsn: str) -> str:
    """A login role like the one docs/rules.md asks for; returns its DSN."""
    name = f"wd_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE ROLE {name} LOGIN IN ROLE pg_read_all_stats")
    return dsn.replace("postgres@", f"{name}@", 1)


async def test_latency_rule_judges_the_in_window_average_not_the_lifetime_one(
    postgres_dsn: str,
) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    src: PostgresSource | None = None
    try:
        await conn.execute("CREATE EXTENSION pg_stat_statements")
        src = PostgresSource({"app": await monitoring_role(conn, postgres_dsn)})
        for i in range(300):  # a long, fast history before the deploy
            await conn.fetchval("SELECT $1::int + 1", i)
        latency = PostgresRule.model_validate(shipped("database.yml", "db-avg-query-latency"))
        assert (await src.sample(latency, ctx())).kind is SampleKind.NO_DATA  # start point
        for i in range(2):  # in the window: two slow statements and fast ones
            await conn.execute("SELECT pg_sleep(1.1)")
            await conn.fetchval("SELECT $1::int + 1", i)
        sample = await src.sample(latency, ctx())
        lifetime = await conn.fetchrow(
            "SELECT sum(total_exec_time) / sum(calls) AS mean FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await conn.close()
        if src is not None:
            await src.close()
    assert lifetime is not None and lifetime["mean"] < 100  # ms: well under a second
    assert sample.kind is SampleKind.VALUES
    worst = max(sample.series, key=lambda s: s.value)
    assert worst.value > 1000 and worst.labels["statement"] == "SELECT pg_sleep($1)"
    # Per statement: the fast ones in the window stay fast; none is averaged in.
    others = [s.value for s in sample.series if s is not worst]
    assert others and all(v < 100 for v in others)
    fast = latency.model_copy(update={"for_": 0.0})
    result = evaluate(fast, RuleState(), sample, now=0)
    assert result.verdict is Verdict.FIRING and result.value == worst.value


async def test_missing_pg_stat_statements_is_said_once(source: PostgresSource) -> None:
    latency = PostgresRule.model_validate(shipped("database.yml", "db-avg-query-latency"))
    with structlog.testing.capture_logs() as logs:
        samples = [await source.sample(latency, ctx()) for _ in range(3)]
    assert all(s.kind is SampleKind.ERROR and not s.transient for s in samples)
    assert "pg_stat_statements is not installed" in (samples[0].error or "")
    said = [e for e in logs if "pg_stat_statements" in e["event"]]
    assert len(said) == 1 and "CREATE EXTENSION pg_stat_statements" in said[0]["event"]


async def test_a_standing_count_confirming_a_rollback_judges_only_new_rows(
    source: PostgresSource, postgres_dsn: str
) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute("CREATE TABLE orphans (id int)")
    await conn.execute("INSERT INTO orphans VALUES (1), (2), (3)")
    count = rule("SELECT count(*)::float8 AS orphans FROM orphans", standing=True)
    watching = await source.sample(count, ctx())
    assert [s.value for s in watching.series] == [3.0]  # watching: the count as it stands
    rolled = SampleContext(window_id="w1", variables={}, at=time.time(), since=100.0,
                           restored=True)  # fmt: skip
    first = await source.sample(count, rolled)
    assert [s.value for s in first.series] == [0.0]  # the 3 rows stay: none is new
    assert first.detail == (
        "new rows since the rollback; 3 counted at the rollback stay and still need repair"
    )
    await conn.execute("INSERT INTO orphans VALUES (4)")
    again = await source.sample(count, rolled)
    await conn.close()
    assert [s.value for s in again.series] == [1.0]  # a new violation after the rollback
