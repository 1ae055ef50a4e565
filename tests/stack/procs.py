"""The watched stack's processes, from PyPI and Debian packages, on free loopback ports.

PostgreSQL (pg_stat_statements preloaded; one database per scenario with RLS and FKs),
Redis (Celery's broker and a watched cache), Celery workers and Flower 2.x (``/metrics``),
the FastAPI app (``tests/stack/app.py``) once per service, postgres_exporter,
redis_exporter, node_exporter (its vmstat read from a procfs of our own, so a test can
"OOM-kill" without harming the machine) and a real Prometheus scraping them every
second, adding the ``service`` label by relabelling as ``deploy/prometheus.yml`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from examples.stack import REPO, free_port, running, stop
from tests.servers.common import require_binary
from tests.servers.postgres import PostgresServer

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE customers (id serial PRIMARY KEY, email text);
CREATE TABLE orders (id serial PRIMARY KEY, tenant text NOT NULL DEFAULT 'a',
                     customer_id int REFERENCES customers (id));
CREATE TABLE order_items (id serial PRIMARY KEY,
                          order_id int CONSTRAINT order_items_order_fk REFERENCES orders (id));
INSERT INTO customers (email) VALUES ('a@example.com');
INSERT INTO orders (tenant, customer_id) VALUES ('a', 1);
INSERT INTO order_items (order_id) VALUES (1);
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON orders
  USING (tenant = current_setting('app.tenant', true))
  WITH CHECK (tenant = current_setting('app.tenant', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;
"""


def setup_roles(pg: PostgresServer) -> None:
    """``app`` (the application: no superuser, so RLS applies) and ``exporter``
    (postgres_exporter, a pg_monitor member: left out of the latency rule)."""
    pg.psql("CREATE ROLE app LOGIN; CREATE ROLE exporter LOGIN IN ROLE pg_monitor")


def make_database(pg: PostgresServer, name: str) -> str:
    """A database with the pack's example schema; returns the app role's DSN."""
    pg.psql(f'CREATE DATABASE "{name}"')
    pg.psql(SCHEMA, dbname=name)
    return f"postgresql://app@{pg.host}:{pg.port}/{name}"


@contextlib.contextmanager
def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """A process without a port of its own (a Celery worker), stopped on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=REPO
        )
    try:
        yield
    finally:
        stop(proc)


@dataclass
class AppProc:
    """One FastAPI app instance serving ``service``."""

    service: str
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(self, **faults: object) -> None:
        httpx.post(f"{self.url}/fault", json=faults, timeout=5).raise_for_status()

    def heal(self) -> None:
        httpx.post(f"{self.url}/heal", timeout=5).raise_for_status()

    def db_write(self, what: str) -> int:
        return httpx.post(f"{self.url}/db/{what}", timeout=10).status_code


def start_app(
    stack: contextlib.ExitStack, home: Path, service: str, *, dsn: str = "", broker: str = ""
) -> AppProc:
    port = free_port()
    log = home / f"app-{service}.log"
    log.touch()
    argv = [sys.executable, "-m", "tests.stack.app", "--port", str(port), "--service", service]
    argv += ["--log", str(log), "--rps", "8"]
    argv += ["--dsn", dsn] if dsn else []
    argv += ["--broker", broker] if broker else []
    stack.enter_context(running(argv, home / f"uvicorn-{service}.out", port, cwd=REPO))
    return AppProc(service, port, log)


def celery_argv(broker: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.stack.celery_app",
        "--broker",
        broker,
        *args,
    ]


def start_celery(stack: contextlib.ExitStack, home: Path, broker: str, queues: list[str]) -> int:
    """One solo worker per service queue (named ``<service>@stack``) and Flower; returns
    Flower's port."""
    env = {**os.environ, "STACK_BROKER": broker}
    for queue in queues:
        argv = celery_argv(broker, "worker", "-Q", queue, "-n", f"{queue}@stack", "-P", "solo")
        argv += ["-E", "--without-gossip", "--without-mingle", "-l", "WARNING"]
        stack.enter_context(spawn(argv, home / f"worker-{queue}.log", env))
    port = free_port()
    argv = celery_argv(broker, "flower", "--address=127.0.0.1", f"--port={port}")
    stack.enter_context(running(argv, home / "flower.log", port, cwd=REPO, env=env, timeout=60))
    return port


class FakeVmstat:
    """/proc/vmstat for node_exporter's ``--path.procfs``: the OOM-kill counter is ours."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.kills = 0
        self._write()

    def oom_kill(self) -> None:
        self.kills += 1
        self._write()

    def _write(self) -> None:
        text = f"pgpgin 1000\npgpgout 2000\npswpin 0\npswpout 0\noom_kill {self.kills}\n"
        tmp = self.root / "vmstat.tmp"
        tmp.write_text(text)
        tmp.replace(self.root / "vmstat")


def start_exporters(
    stack: contextlib.ExitStack, home: Path, pg: PostgresServer, redis_url: str
) -> tuple[dict[str, int], FakeVmstat]:
    """postgres_exporter, redis_exporter, node_exporter; their ports by name."""
    ports = {name: free_port() for name in ("postgres", "redis", "node")}
    pg_env = {
        **os.environ,
        "DATA_SOURCE_NAME": f"{pg.dsn('postgres').replace('postgres@', 'exporter@')}?sslmode=disable",
    }
    argv = [require_binary("prometheus-postgres-exporter", "postgres_exporter")]
    argv += [f"--web.listen-address=127.0.0.1:{ports['postgres']}"]
    stack.enter_context(
        running(argv, home / "postgres_exporter.log", ports["postgres"], env=pg_env)
    )
    argv = [require_binary("prometheus-redis-exporter", "redis_exporter")]
    argv += ["-redis.addr", redis_url, "-web.listen-address", f"127.0.0.1:{ports['redis']}"]
    stack.enter_context(running(argv, home / "redis_exporter.log", ports["redis"]))
    vmstat = FakeVmstat(home / "procfs")
    argv = [require_binary("prometheus-node-exporter", "node_exporter")]
    argv += [f"--path.procfs={vmstat.root}", "--collector.disable-defaults", "--collector.vmstat"]
    argv += [f"--web.listen-address=127.0.0.1:{ports['node']}"]
    stack.enter_context(running(argv, home / "node_exporter.log", ports["node"]))
    return ports, vmstat


@dataclass
class ScrapeJobs:
    """Prometheus jobs: (name, host:port, service or None, relabel the Flower worker)."""

    jobs: list[tuple[str, str, str | None]] = field(default_factory=list)
    flower: str | None = None

    def config(self) -> str:
        lines: list[str] = []
        for name, target, service in self.jobs:
            lines += [f"  - job_name: {name}", "    static_configs:"]
            lines += [f"      - targets: {json.dumps([target])}"]
            if service:
                lines += ["    relabel_configs:", "      - target_label: service"]
                lines += [f"        replacement: {service}"]
        if self.flower:
            lines += ["  - job_name: flower", "    static_configs:"]
            lines += [f"      - targets: {json.dumps([self.flower])}"]
            lines += ["    metric_relabel_configs:", "      - source_labels: [worker]"]
            lines += ['        regex: "([^@]+)@.*"', "        target_label: service"]
        return "\n".join(lines)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``check()`` until truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready within {timeout}s")
