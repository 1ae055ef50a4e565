"""The stack suite's faults: what breaks for each runbook trigger, and what a rollback
restores. Each trigger has a service of its own (app instance, database or Celery
worker), so faults run side by side without disturbing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from tests.stack.stack import Stack


@dataclass
class Trigger:
    """A runbook trigger, its fault, and what should follow."""

    rule: str
    service: str
    action: str  # rollback | approve | notify
    fault: Callable[[], None]


def triggers(
    stack: Stack,
) -> tuple[list[Trigger], list[Trigger], list[Trigger], list[Trigger]]:
    """(main watchdog's, one-database-each, manual, scrape) triggers with their faults."""
    apps, pg = stack.apps, stack.pg
    flags = redis.Redis.from_url(stack.broker_url)

    def db_down() -> None:
        pg.psql("ALTER DATABASE app_dbdown ALLOW_CONNECTIONS false")
        pg.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'app_dbdown'"
        )

    def orphan() -> None:  # a migration that dropped the constraint, then a bad write
        sql = "ALTER TABLE order_items DROP CONSTRAINT order_items_order_fk;"
        pg.psql(sql + "INSERT INTO order_items (order_id) VALUES (424242)", "app_orphans")

    main = [
        Trigger("api-health", "health", "rollback", lambda: apps["health"].fault(health_down=True)),
        Trigger(
            "api-5xx-judged", "errors", "rollback", lambda: apps["errors"].fault(error_ratio=1)
        ),
        Trigger("api-p95-judged", "slow", "rollback", lambda: apps["slow"].fault(latency=2.5)),
        Trigger(
            "celery-failure-ratio",
            "celery",
            "rollback",
            lambda: flags.set("stack:fail:celery", 1),
        ),
    ]
    nulls = "INSERT INTO orders (tenant, customer_id) VALUES ('a', NULL)"
    own_db = [
        Trigger("db-connection-failures", "dbdown", "rollback", db_down),
        Trigger(
            "db-avg-query-latency",
            "dblatency",
            "rollback",
            lambda: apps["dblatency"].fault(slow_sql=True),
        ),
        Trigger("fk-orphan-rows", "orphans", "approve", orphan),
        Trigger("required-column-nulls", "nulls", "approve", lambda: pg.psql(nulls, "app_nulls")),
        Trigger("rls-violations-logged", "rls", "approve", lambda: apps["rls"].db_write("rls")),
        Trigger("fk-violations-logged", "fklog", "approve", lambda: apps["fklog"].db_write("fk")),
    ]
    m = apps["manual"]
    manual_ = [  # the ratio first: a young window's short range shows it soonest
        Trigger(
            "webhook-signature-failures", "manual", "notify", lambda: m.fault(webhook_invalid=1)
        ),
        Trigger("oom-kills-host", "manual", "notify", stack.vmstat.oom_kill),
        Trigger("synthetic-login", "manual", "notify", lambda: m.fault(login_down=True)),
        Trigger("synthetic-core-api", "manual", "notify", lambda: m.fault(core_down=True)),
    ]
    scrape = [  # the same faults, judged from the app's own /metrics
        Trigger("api-5xx-ratio-scrape", "scrape5xx", "rollback",
                lambda: apps["scrape5xx"].fault(error_ratio=1)),
        Trigger("api-p95-scrape", "scrapeslow", "rollback",
                lambda: apps["scrapeslow"].fault(latency=2.5)),
    ]  # fmt: skip
    return main, own_db, manual_, scrape


def healer(stack: Stack) -> Callable[[str], None]:
    """What a rollback to the previous version restores, per service."""
    flags = redis.Redis.from_url(stack.broker_url)

    def heal(service: str) -> None:
        if service in stack.apps:
            stack.apps[service].heal()
        if service == "celery":
            flags.delete("stack:fail:celery")
        if service == "dbdown":
            stack.pg.psql("ALTER DATABASE app_dbdown ALLOW_CONNECTIONS true")

    return heal
