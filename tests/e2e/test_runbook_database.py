"""Runbook triggers on the application database, against a real PostgreSQL.

The schema has row-level security (documents, per tenant), a foreign key
(order_items -> orders) and a column that is NOT NULL by contract only
(orders.customer_id, customers.email). The watchdog connects as a monitoring role
(pg_read_all_stats, BYPASSRLS, SELECT), the application as its own role; the log rules
read the server's real log. Rules are rules/database.yml and rules/data-integrity.yml
as shipped, with `for` compressed to a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.runbook import (
    Receiver,
    assert_fires,
    assert_passes_quietly,
    pack,
    receiver,
    watchdog,
)
from tests.servers.postgres import PostgresServer, _fast_shutdown, start_postgres
from tests.shipped import shipped
from watchdog.app import App

pytestmark = pytest.mark.e2e

SCHEMA = """
CREATE EXTENSION pg_stat_statements;
CREATE TABLE customers (id int PRIMARY KEY, email text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id));
CREATE TABLE order_items (id serial PRIMARY KEY, order_id int REFERENCES orders (id), sku text);
CREATE TABLE documents (id serial PRIMARY KEY, tenant text NOT NULL, body text);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents
  USING (tenant = current_user) WITH CHECK (tenant = current_user);
INSERT INTO customers VALUES (1, 'ada@example.com');
INSERT INTO orders VALUES (1, 1);
INSERT INTO order_items (order_id, sku) VALUES (1, 'book');
"""


@dataclass
class Db:
    """The test database: a superuser connection and the application role's."""

    admin: asyncpg.Connection
    app: asyncpg.Connection
    app_role: str
    monitor_dsn: str


@pytest.fixture
async def db(postgres_dsn: str) -> AsyncIterator[Db]:
    suffix = uuid.uuid4().hex[:8]
    app_role, monitor = f"app_{suffix}", f"wd_{suffix}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(SCHEMA)
    await admin.execute(
        f"CREATE ROLE {app_role} LOGIN;"
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {app_role};"
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {app_role};"
        f"CREATE ROLE {monitor} LOGIN BYPASSRLS IN ROLE pg_read_all_stats;"
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {monitor};"
    )
    app = await asyncpg.connect(postgres_dsn.replace("postgres@", f"{app_role}@", 1))
    try:
        yield Db(admin, app, app_role, postgres_dsn.replace("postgres@", f"{monitor}@", 1))
    finally:
        await app.close()
        await admin.close()


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@contextlib.asynccontextmanager
async def database_watchdog(
    tmp_path: Path, db: Db, server: PostgresServer, rec: Receiver
) -> AsyncIterator[App]:
    log = {"path": str(server.log_file)}
    rules = pack(
        "database.yml",
        "data-integrity.yml",
        **{"rls-violations-logged": log, "fk-violations-logged": log},
    )
    async with watchdog(tmp_path, rules, rec.port, postgres_targets={"app": db.monitor_dsn}) as app:
        yield app


async def traffic(db: Db, stop: asyncio.Event) -> None:
    """Healthy application traffic: fast reads and valid writes."""
    n = 100
    while not stop.is_set():
        n += 1
        await db.app.execute("INSERT INTO orders VALUES ($1, 1)", n)
        await db.app.execute("INSERT INTO order_items (order_id, sku) VALUES ($1, 'pen')", n)
        await db.app.execute("INSERT INTO documents (tenant, body) VALUES (current_user, 'note')")
        await db.app.fetch("SELECT * FROM documents")
        await asyncio.sleep(0.05)


async def test_healthy_database_window_passes(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(traffic(db, stop))
    try:
        async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
            detail = await assert_passes_quietly(app, rec)
    finally:
        stop.set()
        await load
    latency = next(r for r in detail.rules if r.name == "db-avg-query-latency")
    assert latency.last_value is not None and latency.last_value < 1000  # it saw the traffic


async def test_orphan_rows_ask_for_approval(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    async def orphan() -> None:
        # a migration that bypassed the constraint (replica mode skips FK triggers)
        async with db.admin.transaction():
            await db.admin.execute("SET LOCAL session_replication_role = replica")
            await db.admin.execute("INSERT INTO order_items (order_id, sku) VALUES (999, 'x')")

    async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
        detail = await assert_fires(app, rec, "fk-orphan-rows", "approve", orphan)
    assert 'relation="order_items.order_id"' in (detail.window.reason or "")


async def test_nulls_in_required_columns_ask_for_approval(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    async def null() -> None:
        await db.app.execute("INSERT INTO orders VALUES (2, NULL)")

    async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
        detail = await assert_fires(app, rec, "required-column-nulls", "approve", null)
    assert "orders.customer_id" in (detail.window.reason or "")


async def test_logged_rls_violations_ask_for_approval(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    async def cross_tenant_write() -> None:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await db.app.execute("INSERT INTO documents (tenant, body) VALUES ('other', 'x')")

    async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
        await assert_fires(app, rec, "rls-violations-logged", "approve", cross_tenant_write)


async def test_logged_fk_violations_ask_for_approval(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    async def dangling_write() -> None:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await db.app.execute("INSERT INTO order_items (order_id, sku) VALUES (4242, 'x')")

    async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
        await assert_fires(app, rec, "fk-violations-logged", "approve", dangling_write)


async def test_slow_queries_in_the_window_roll_back(
    tmp_path: Path, db: Db, postgres_server: PostgresServer, rec: Receiver
) -> None:
    for i in range(200):  # a fast history: the lifetime average stays far below 1 s
        await db.app.fetchval("SELECT count(*) FROM orders WHERE id = $1", i)

    async def slow() -> None:
        for _ in range(2):
            await db.app.execute("SELECT pg_sleep(1.1)")

    async with database_watchdog(tmp_path, db, postgres_server, rec) as app:
        await assert_fires(app, rec, "db-avg-query-latency", "rollback", slow)


async def test_database_down_rolls_back(tmp_path: Path, rec: Receiver) -> None:
    rule = shipped("database.yml", "db-connection-failures", **{"for": "1s", "interval": "500ms"})
    with start_postgres() as (server, proc):
        async with watchdog(
            tmp_path, [rule], rec.port, postgres_targets={"app": server.dsn()}
        ) as app:
            detail = await assert_fires(
                app, rec, "db-connection-failures", "rollback", lambda: _fast_shutdown(proc)
            )
    firing = next(
        e
        for e in detail.events
        if e.rule == "db-connection-failures" and e.kind.value == "rule_firing"
    )
    assert "cannot reach target 'app'" in str(firing.data.get("reason")) or "unavailable" in str(
        firing.data.get("reason")
    )
