"""The session's real stack, started once: processes from procs.py, wired together, with
Prometheus scraping them all and traffic flowing before anything is judged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from examples.stack import query_values, start_prometheus
from tests.servers.postgres import PostgresServer, start_postgres
from tests.servers.redis import start_redis
from tests.stack import procs
from tests.stack.procs import AppProc, FakeVmstat, ScrapeJobs

SCRAPE = 1.0  # seconds between Prometheus scrapes

APPS = {  # service -> (own database, Celery worker)
    "healthy": (True, True),
    "health": (False, False),
    "errors": (False, False),
    "slow": (False, False),
    "celery": (False, True),
    "manual": (False, False),
    "dblatency": (True, False),
    "rls": (True, False),
    "fklog": (True, False),
    # `source: scrape` (rules/alternatives/api-scrape.yml): the app's /metrics, no Prometheus
    "scrape5xx": (False, False),
    "scrapeslow": (False, False),
}
DB_ONLY = ("dbdown", "orphans", "nulls")


@dataclass
class Stack:
    """Everything a scenario reaches."""

    home: Path
    pg: PostgresServer
    redis_url: str  # the watched cache (db 1)
    broker_url: str  # Celery's broker (db 0)
    prom_url: str
    apps: dict[str, AppProc]
    vmstat: FakeVmstat

    def watchdog_dsn(self, service: str) -> str:
        """The watchdog's target ``app``: the service's database, as a superuser (it
        counts every row, RLS or not, and reads every role's statement text)."""
        return self.pg.dsn(f"app_{service}")

    def log_path(self, service: str) -> Path:
        app = self.apps.get(service)
        if app is not None:
            return app.log
        empty = self.home / f"app-{service}.log"
        empty.touch()
        return empty


def _wait_scraped(prom: str, services: list[str]) -> None:
    def traffic() -> bool:
        q = 'count(sum by (service) (rate(http_requests_total{handler="/api/work"}[10s]) > 0))'
        return query_values(prom, q) == [float(len(services))]

    procs.wait_until(traffic, 90, "traffic on every app")
    q = 'count(sum by (service) (flower_events_total{type="task-succeeded"}))'
    procs.wait_until(lambda: query_values(prom, q) == [2.0], 90, "Celery events in Flower")
    procs.wait_until(lambda: min(query_values(prom, "up")) == 1.0, 30, "every target up")


@contextlib.contextmanager
def start_stack(home: Path) -> Iterator[Stack]:
    with contextlib.ExitStack() as stack:
        pg, _ = stack.enter_context(start_postgres())
        procs.setup_roles(pg)
        # maxmemory set, as for a cache: redis-memory has a ratio to judge.
        redis = stack.enter_context(start_redis(home, maxmemory="512mb"))
        broker = f"redis://127.0.0.1:{redis.port}/0"
        jobs = ScrapeJobs()
        for name in DB_ONLY:
            procs.make_database(pg, f"app_{name}")
        apps: dict[str, AppProc] = {}
        for service, (db, worker) in APPS.items():
            dsn = procs.make_database(pg, f"app_{service}") if db else ""
            apps[service] = procs.start_app(
                stack, home, service, dsn=dsn, broker=broker if worker else ""
            )
            jobs.jobs.append((f"app-{service}", f"127.0.0.1:{apps[service].port}", service))
        queues = [s for s, (_, worker) in APPS.items() if worker]
        jobs.flower = f"127.0.0.1:{procs.start_celery(stack, home, broker, queues)}"
        ports, vmstat = procs.start_exporters(stack, home, pg, redis.url)
        jobs.jobs += [("node", f"127.0.0.1:{ports['node']}", "manual")]
        jobs.jobs += [("postgres", f"127.0.0.1:{ports['postgres']}", "db")]
        jobs.jobs += [("redis", f"127.0.0.1:{ports['redis']}", "cache")]
        prom = stack.enter_context(start_prometheus(home, [], f"{SCRAPE:g}s", jobs.config()))
        _wait_scraped(prom.url, list(APPS))
        cache = f"redis://127.0.0.1:{redis.port}/1"
        yield Stack(home, pg, cache, broker, prom.url, apps, vmstat)
