""" "Watchdog blind" is about a source: once per outage for all its rules, never for an
empty answer or for a rule whose failure is its signal. Fake clock, scripted sources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import ScriptedSource
from tests.rules import Rules, rules
from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Event, EventKind, Sample, Window
from watchdog.lifecycle.engine import Engine
from watchdog.store.base import Store


def rule_file(folder: Path) -> Rules:
    """Three Prometheus rules (one on job ``api``); three PostgreSQL ones on two targets."""
    file = rules(folder).group("g", "10s")
    file.prometheus("p1", "a", above=1).prometheus("p2", "b", above=1, no_data="ok")
    file.prometheus("p3", "c", above=1, job="api")
    file.postgres("db-conn", "app", "select 1", above=1, on_error="breach", for_="5m")
    file.postgres("db-nulls", "app", "select 0", above=0)
    return file.postgres("reporting", "reports", "select 0", above=0)


PROM = ("p1", "p2", "p3")


@dataclass
class World:
    clock: FakeClock
    prom: ScriptedSource
    pg: ScriptedSource
    engine: Engine
    store: Store
    window: Window

    async def polls(self, n: int) -> None:
        for _ in range(n):
            await self.engine.tick()
            await self.engine.drain()
            self.clock.advance(10)

    async def events(self, *kinds: EventKind) -> list[Event]:
        return [e for e in await self.store.list_events(self.window.id) if e.kind in kinds]

    def fail(self, source: ScriptedSource, names: tuple[str, ...], sample: Sample) -> None:
        source.values.update(dict.fromkeys(names, sample))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    prom, pg = ScriptedSource(), ScriptedSource()
    targets = {"app": "postgresql://wd@127.0.0.1:1/app", "reports": "postgresql://wd@127.0.0.1:1/r"}
    settings = app_settings(
        tmp_path,
        rule_file(tmp_path),
        postgres_targets=targets,
        notify={"blind_after": 2},
        window=3600,
    )
    seams = {"sources": {"prometheus": prom, "postgres": pg}}
    async with opened(settings, clock=clock, **seams) as parts:
        deployment = Deployment("api", "prod", "v2")
        window = await parts.windows.open_window(deployment, window_seconds=None, actor="t")
        yield World(clock, prom, pg, parts.engine, parts.store, window)
        await parts.engine.drain()


async def test_one_blind_and_one_sighted_for_every_rule_of_a_source(world: World) -> None:
    await world.polls(2)
    world.fail(world.prom, PROM, Sample.failed("cannot connect to Prometheus: connection refused"))
    await world.polls(6)
    blind = await world.events(EventKind.WATCHDOG_BLIND)
    assert [e.data["source"] for e in blind] == ["Prometheus"]
    assert blind[0].data["severity"] == "warning" and blind[0].data["failures"] == 2
    assert "connection refused" in blind[0].message
    world.fail(world.prom, PROM, Sample.of(0.0))
    await world.polls(3)
    sighted = await world.events(EventKind.WATCHDOG_SIGHTED)
    assert [e.message for e in sighted] == ["Prometheus answers again"]
    assert len(await world.events(EventKind.WATCHDOG_BLIND)) == 1


async def test_a_source_is_sighted_only_when_every_failing_rule_answers(world: World) -> None:
    world.fail(world.prom, PROM, Sample.failed("timed out"))
    await world.polls(3)
    world.fail(world.prom, ("p1", "p2"), Sample.of(0.0))  # p3's query still times out
    await world.polls(3)
    assert await world.events(EventKind.WATCHDOG_SIGHTED) == []
    world.fail(world.prom, ("p1", "p2"), Sample.failed("timed out"))  # and again: no new blind
    await world.polls(3)
    assert len(await world.events(EventKind.WATCHDOG_BLIND)) == 1
    world.fail(world.prom, PROM, Sample.of(0.0))
    await world.polls(1)
    assert len(await world.events(EventKind.WATCHDOG_SIGHTED)) == 1


async def test_empty_answers_and_rejected_queries_are_not_blindness(world: World) -> None:
    world.fail(world.prom, ("p1", "p2"), Sample.no_data("empty result"))
    world.fail(world.prom, ("p3",), Sample.failed("bad_data: parse error", transient=False))
    await world.polls(6)
    assert await world.events(EventKind.WATCHDOG_BLIND, EventKind.WATCHDOG_SIGHTED) == []


async def test_a_rule_whose_failure_is_its_signal_is_never_blind(world: World) -> None:
    world.fail(world.pg, ("db-conn",), Sample.failed("cannot reach target 'app': refused"))
    await world.polls(6)
    assert await world.events(EventKind.WATCHDOG_BLIND) == []
    pending = await world.events(EventKind.RULE_PENDING)
    assert [e.rule for e in pending] == ["db-conn"]  # judged as the breach it is


async def test_each_source_has_its_own_outage(world: World) -> None:
    down = Sample.failed("cannot reach target: connection refused")
    world.fail(world.pg, ("db-conn", "db-nulls", "reporting"), down)
    await world.polls(4)
    blind = await world.events(EventKind.WATCHDOG_BLIND)
    assert sorted(e.data["source"] for e in blind) == [
        "postgres target app",
        "postgres target reports",
    ]


async def test_a_scrape_job_down_is_its_own_source(world: World) -> None:
    job_down = Sample.failed(
        "scrape job api: every target is down (up == 0)", unreachable="Prometheus job api"
    )
    world.fail(world.prom, ("p3",), job_down)
    await world.polls(3)
    assert [e.data["source"] for e in await world.events(EventKind.WATCHDOG_BLIND)] == [
        "Prometheus job api"
    ]
    world.fail(world.prom, ("p3",), Sample.of(0.0))
    await world.polls(1)
    assert [e.message for e in await world.events(EventKind.WATCHDOG_SIGHTED)] == [
        "Prometheus job api answers again"
    ]


def test_every_kind_names_its_source_or_none_when_failure_is_the_signal() -> None:
    from pydantic import TypeAdapter

    from watchdog.rulefile.files import Rule
    from watchdog.sources.blindness import source_key

    adapter: TypeAdapter[Any] = TypeAdapter(Rule)

    def key(**fields: object) -> str | None:
        return source_key(adapter.validate_python({"name": "r", **fields}))

    assert key(source="prometheus", query="up", threshold="> 1") == "Prometheus"
    assert key(source="loki", query='{app="x"}', threshold="> 1") == "Loki"
    scrape = {"url": "http://10.0.0.7:9100/metrics", "value": "gauge", "metric": {"metric": "m"}}
    assert key(source="scrape", threshold="> 1", **scrape) == ("scrape target 10.0.0.7:9100")
    assert key(source="redis", target="cache", threshold="> 1") == "redis target cache"
    assert key(source="http", url="http://api/health") is None  # its failure is its value
    assert key(source="postgres", target="app", query="select 1", threshold="> 1",
               on_error="breach") is None  # fmt: skip


def test_the_blind_gauge_knows_every_source_asked_and_forgets_the_oldest_past_its_bound() -> None:
    from pydantic import TypeAdapter

    from watchdog.rulefile.files import Rule
    from watchdog.sources.blindness import MAX_SEEN, Blindness

    adapter: TypeAdapter[Any] = TypeAdapter(Rule)
    prom = adapter.validate_python({"name": "p", "source": "prometheus", "query": "up",
                                    "threshold": "> 1"})  # fmt: skip
    blindness = Blindness(blind_after=2)
    down = Sample.failed("connection refused")
    blindness.observe("w1", prom, Sample.of(0.0), 0)
    assert blindness.sources() == {"Prometheus": False}
    blindness.observe("w1", prom, down, 1)
    assert blindness.sources() == {"Prometheus": False}  # not told yet: not blind
    blindness.observe("w1", prom, down, 2)
    assert blindness.sources() == {"Prometheus": True}
    blindness.observe("w1", prom, Sample.of(0.0), 0)
    assert blindness.sources() == {"Prometheus": False}  # answers again: 0, still listed
    for n in range(MAX_SEEN):  # a different unreachable host per sample
        blindness.observe("w1", prom, Sample.failed("x", unreachable=f"host {n}"), 1)
    seen = blindness.sources()
    assert len(seen) == MAX_SEEN and "Prometheus" not in seen and "host 0" in seen
