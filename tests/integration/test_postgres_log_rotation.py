"""The shipped log rules on PostgreSQL's own csvlog and jsonlog, across its own rotation.

A real server with ``logging_collector`` writing ``log/postgresql-<time>.csv`` and
``.json`` (PostgreSQL 15 writes jsonlog); the rules read the glob as a user writes it.
``SELECT pg_rotate_logfile()`` (what ``log_rotation_age`` does daily) starts a new file:
RLS and FK violations logged before the rotation, after the last read, and after it all
fire the rule. Before issue 21 the rule read one file name and went deaf at the rotation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.postgres import PostgresServer, start_postgres
from tests.shipped import shipped
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, Sample, SampleKind, Verdict
from watchdog.rulefile.schema import LogRule
from watchdog.sources.base import SampleContext
from watchdog.sources.log import LogSource

pytestmark = pytest.mark.integration

LOGGING = (
    "logging_collector=on",
    "log_destination=csvlog,jsonlog",
    "log_directory=log",
    "log_filename=postgresql-%Y-%m-%d_%H%M%S.log",  # .csv / .json replace .log
    "log_file_mode=0640",
)
SCHEMA = """
CREATE ROLE app;
CREATE TABLE documents (owner text NOT NULL, body text);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON documents USING (owner = current_user) WITH CHECK (owner = current_user);
GRANT ALL ON documents TO app;
CREATE TABLE orders (id int PRIMARY KEY);
CREATE TABLE order_items (order_id int NOT NULL REFERENCES orders (id));
GRANT ALL ON orders, order_items TO app;
"""
VIOLATIONS = {
    "rls-violations-logged": "SET ROLE app; INSERT INTO documents VALUES ('someone-else', 'x')",
    "fk-violations-logged": "INSERT INTO order_items VALUES (42)",
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[PostgresServer, Path]]:
    with start_postgres(LOGGING) as (server, _proc):
        server.psql(SCHEMA)
        data = Path(server.psql("SHOW data_directory").strip())
        yield server, data / "log"


def violate(server: PostgresServer, rule: str) -> None:
    with pytest.raises(RuntimeError, match="violates"):
        server.psql(VIOLATIONS[rule])


def current_file(server: PostgresServer, fmt: str) -> str:
    return server.psql(f"SELECT pg_current_logfile('{fmt}')").strip()


def rotate(server: PostgresServer, fmt: str) -> str:
    """Rotate until the server writes a new file: its name has one-second resolution,
    so a rotation within the same second reopens the same file."""
    before, deadline = current_file(server, fmt), time.monotonic() + 60  # a hang guard
    while (now := current_file(server, fmt)) == before:
        assert time.monotonic() < deadline, f"PostgreSQL kept writing {before}"
        server.psql("SELECT pg_rotate_logfile()")
        time.sleep(0.05)
    return now


def logged(log_dir: Path, name: str, text: str) -> None:
    """Wait for the collector to write ``text`` to ``name`` (it writes asynchronously)."""
    path, deadline = log_dir.parent / name, time.monotonic() + 60  # a hang guard
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.05)


async def judge(source: LogSource, rule: LogRule, window: str) -> tuple[Sample, Verdict]:
    sample = await source.sample(rule, SampleContext(window, {}, at=time.time()))
    assert sample.kind is SampleKind.VALUES, sample.error
    return sample, evaluate(rule, RuleState(), sample, now=time.time()).verdict


@pytest.mark.parametrize("fmt", ["csvlog", "jsonlog"])
@pytest.mark.parametrize("name", list(VIOLATIONS))
async def test_violations_logged_across_pg_rotate_logfile_fire_the_rule(
    server: tuple[PostgresServer, Path], fmt: str, name: str
) -> None:
    pg, log_dir = server
    suffix = {"csvlog": "csv", "jsonlog": "json"}[fmt]
    rule = LogRule.model_validate(
        shipped("data-integrity.yml", name, path=str(log_dir / f"postgresql-*.{suffix}"))
    )
    source, window = LogSource(), f"{fmt}-{name}"
    assert (await judge(source, rule, window))[1] is Verdict.OK  # the start point
    first = current_file(pg, fmt)
    violate(pg, name)  # after the last read, before the rotation
    logged(log_dir, first, "violates")
    second = rotate(pg, fmt)
    violate(pg, name)  # after the rotation, in the new file
    logged(log_dir, second, "violates")
    sample, verdict = await judge(source, rule, window)
    assert verdict is Verdict.FIRING
    assert sample.series[0].value == 2, sample.detail
    third = rotate(pg, fmt)
    violate(pg, name)
    logged(log_dir, third, "violates")
    sample, verdict = await judge(source, rule, window)
    assert sample.series[0].value == 3 and verdict is Verdict.FIRING, sample.detail
