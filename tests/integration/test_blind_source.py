""" "Watchdog blind" is said once per source outage, whatever the number of rules on it.

A real Prometheus scrapes a small local target; the watchdog (a real App) watches three
rules on it. The target stops (its job's ``up == 0``) and comes back, then Prometheus
itself stops and comes back on the same port: each outage is one ``watchdog_blind``
(severity warning, at the webhook) and one ``watchdog_sighted``. A Prometheus URL that
refuses connections makes three rules blind once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from examples.stack import free_port, running, start_prometheus, wait_for_query
from tests.integration import test_source_outage as outage
from tests.integration.test_source_outage import TOKEN, Fakes, detail, open_window
from tests.rules import rules
from tests.world import served, started, until
from watchdog.app import App

# The outage tests' fixtures: the webhook receiver (`fakes`) and an App factory (`start`).
fakes = outage.fakes
start = outage.start


class Target:
    """A /metrics endpoint that can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text="# TYPE jobs_total counter\njobs_total 7\n")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def kinds(d: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in d["events"] if e["kind"] == kind]


async def outage_told(app: App, window_id: str, n: int) -> dict[str, Any]:
    """Wait for the n-th blind event, then for every rule to fail 4 more polls."""
    d = await until(
        lambda: _with(app, window_id, lambda d: len(kinds(d, "watchdog_blind")) >= n),
        f"blind event #{n}",
    )
    seen = {r["name"]: len(r["samples"]) for r in d["rules"]}
    return await until(
        lambda: _with(
            app,
            window_id,
            lambda d: all(len(r["samples"]) >= seen[r["name"]] + 4 for r in d["rules"]),
        ),
        "four more failed polls of every rule",
    )


async def _with(app: App, window_id: str, ok: Callable[[dict[str, Any]], bool]) -> Any:
    d = await detail(app, window_id)
    return d if ok(d) else None


async def sighted(app: App, window_id: str, n: int) -> dict[str, Any]:
    return await until(
        lambda: _with(app, window_id, lambda d: len(kinds(d, "watchdog_sighted")) >= n),
        f"sighted event #{n}",
    )


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.start()
    yield t
    with contextlib.suppress(Exception):
        await t.stop()


async def test_target_down_then_prometheus_down_each_one_blind_and_one_sighted(
    tmp_path: Path,
    fakes: Fakes,
    target: Target,
) -> None:
    extra = (
        f"  - job_name: target\n    static_configs:\n      - targets: ['127.0.0.1:{target.port}']\n"
    )
    file = rules(tmp_path).group("g", "300ms")
    for name, of in [("r1", "sum"), ("r2", "max"), ("r3", "min")]:
        file.prometheus(name, f"{of}(jobs_total)", job="target", above=100)
    with contextlib.ExitStack() as stack:
        prom = stack.enter_context(start_prometheus(tmp_path, [], extra_config=extra))
        await asyncio.to_thread(
            wait_for_query, prom.url, 'up{job="target"}', lambda v: v == [1.0], 30
        )
        settings = served(
            tmp_path, file, token=TOKEN, prometheus_url=prom.url, prometheus_timeout=0.5,
            prometheus_retries=0, tick=0.1,
            notify={"webhook_url": f"{fakes.url}/hook", "poll": 0.1, "blind_after": 2},
        )  # fmt: skip
        async with started(settings) as app:
            await _outages(app, prom, stack, target, fakes)


async def _outages(
    app: App, prom: Any, stack: contextlib.ExitStack, target: Target, hooks: Fakes
) -> None:
    window_id = await open_window(app)
    await until(
        lambda: _with(app, window_id, lambda d: all(r["last_value"] == 7 for r in d["rules"])),
        "the three rules reading the target",
    )
    # 1. The scraped target stops: its job's up == 0, one blind for the three rules.
    await target.stop()
    d = await outage_told(app, window_id, 1)
    blind = kinds(d, "watchdog_blind")
    assert [e["data"]["source"] for e in blind] == ["Prometheus job target"], blind
    assert "up == 0" in blind[0]["message"]
    assert {r["verdict"] for r in d["rules"]} == {"inconclusive"}
    await target.start()
    d = await sighted(app, window_id, 1)
    assert [e["message"] for e in kinds(d, "watchdog_sighted")] == [
        "Prometheus job target answers again"
    ]
    # 2. Prometheus itself stops, then comes back on the same port with the same data.
    argv, port = prom.proc.args, prom.port
    await asyncio.to_thread(prom.stop)
    d = await outage_told(app, window_id, 2)
    blind = kinds(d, "watchdog_blind")
    assert [e["data"]["source"] for e in blind] == ["Prometheus job target", "Prometheus"]
    log = prom.home / "prometheus-restarted.log"
    await asyncio.to_thread(stack.enter_context, running(argv, log, port, timeout=60))
    d = await sighted(app, window_id, 2)
    assert [e["data"]["source"] for e in kinds(d, "watchdog_sighted")] == [
        "Prometheus job target",
        "Prometheus",
    ]
    assert len(kinds(d, "watchdog_blind")) == 2
    told = await until(
        lambda: asyncio.sleep(
            0, [h for h in hooks.webhook if h["event"]["kind"] == "watchdog_blind"]
        ),
        "the blind notifications",
    )
    assert {h["severity"] for h in told} == {"warning"}


async def test_a_refused_prometheus_is_one_blind_for_three_rules(
    start: Callable[..., Awaitable[App]],
) -> None:
    more = [
        {"name": f"more-{i}", "source": "prometheus", "query": "up", "above": 1} for i in (1, 2)
    ]
    app = await start("refused", *more)
    window_id = await open_window(app)
    d = await outage_told(app, window_id, 1)
    assert len(d["rules"]) == 3
    blind = kinds(d, "watchdog_blind")
    assert len(blind) == 1 and blind[0]["data"]["source"] == "Prometheus", blind
    assert "connection refused" in blind[0]["message"]
