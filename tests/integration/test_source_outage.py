"""Prometheus refusing, timing out or answering 500: no rollback on missing data (fail
open, the default), "watchdog blind" told within two polls; fail closed rolls back.

A real App on a real clock; the broken Prometheus is a port nothing listens on, or a
local server that answers 500 or too slowly. The webhook channel and the rollback
endpoint are local fakes that count what they receive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from examples.stack import free_port
from tests.fakes import serving
from tests.rules import rules
from tests.world import api, served, started, starting, until
from watchdog.app import App

TOKEN = "outage-token-0123456789"


@dataclass
class Fakes:
    """A broken Prometheus (500 or slow), the webhook receiver, the rollback endpoint."""

    url: str = ""
    webhook: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: int = 0

    async def query_500(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "error", "error": "boom"}, status=500)

    async def query_slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    async def hook(self, request: web.Request) -> web.Response:
        self.webhook.append(await request.json())
        return web.json_response({})

    async def rollback(self, request: web.Request) -> web.Response:
        self.rollbacks += 1
        return web.json_response({})


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    f = Fakes()
    prometheus = [
        route(f"/{name}/api/v1/query", handler)
        for name, handler in [("p500", f.query_500), ("slow", f.query_slow)]
        for route in (web.get, web.post)
    ]
    async with serving(
        *prometheus, web.post("/hook", f.hook), web.post("/rollback", f.rollback)
    ) as f.url:
        yield f


def prometheus_url(kind: str, fakes: Fakes) -> str:
    return {
        "refused": f"http://127.0.0.1:{free_port()}",
        "500": f"{fakes.url}/p500",
        "timeout": f"{fakes.url}/slow",
    }[kind]


QUERY = 'sum(rate(http_requests_total{status="500"}[1m]))'


@pytest.fixture
async def start(tmp_path: Path, fakes: Fakes) -> AsyncIterator[Callable[..., Awaitable[App]]]:
    async with starting() as begin:

        async def run(kind: str, *more: dict[str, Any], **settings: Any) -> App:
            """``more``: further rules for group ``g``, as the builder takes them."""
            file = rules(tmp_path).group("g", "300ms")
            file.prometheus("error-ratio", QUERY, above=0, action="rollback", severity="critical")
            for rule in more:
                file.rule(**rule)
            plan = {"steps": [{"name": "call", "kind": "http", "url": f"{fakes.url}/rollback"}]}
            return await begin(
                served(
                    tmp_path,
                    file,
                    token=TOKEN,
                    prometheus_url=prometheus_url(kind, fakes),
                    prometheus_timeout=0.5,
                    prometheus_retries=0,
                    tick=0.1,
                    confirm_for=0,  # ends at rolled_back: confirmation has its own tests
                    plans={"p": plan},
                    default_plan="p",
                    http_allowed_hosts=["127.0.0.1"],
                    notify={"webhook_url": f"{fakes.url}/hook", "poll": 0.1, "blind_after": 2},
                    **settings,
                )
            )

        yield run


async def detail(app: App, window_id: str) -> dict[str, Any]:
    return dict((await api(app, "GET", f"/api/v1/deployments/{window_id}", token=TOKEN)).json())


async def open_window(app: App) -> str:
    body = {"service": "api", "version": "v2", "previous_version": "v1", "window": "10m"}
    response = await api(app, "POST", "/api/v1/deployments", token=TOKEN, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("kind", ["refused", "500", "timeout"])
async def test_prometheus_down_fail_open_no_rollback_and_blind_within_two_polls(
    start: Callable[..., Awaitable[App]], fakes: Fakes, kind: str
) -> None:
    app = await start(kind)
    window_id = await open_window(app)

    async def polls(n: int) -> dict[str, Any] | None:
        d = await detail(app, window_id)
        return d if len(d["rules"][0]["samples"]) >= n else None

    d = await until(lambda: polls(6), "six failed polls")
    blind = [e for e in d["events"] if e["kind"] == "watchdog_blind"]
    assert len(blind) == 1 and blind[0]["data"]["failures"] == 2, d["events"]
    assert d["window"]["phase"] == "watching"
    assert d["rules"][0]["verdict"] == "inconclusive"
    await until(
        lambda: asyncio.sleep(
            0, [h for h in fakes.webhook if h["event"]["kind"] == "watchdog_blind"]
        ),
        "the blind notification",
    )
    assert fakes.rollbacks == 0
    assert not any(e["kind"] in {"rule_firing", "rollback_started"} for e in d["events"])


async def test_fail_closed_rolls_back_when_the_source_stays_down(
    start: Callable[..., Awaitable[App]], fakes: Fakes
) -> None:
    app = await start("refused", missing_data="fail_closed")
    window_id = await open_window(app)

    async def rolled_back() -> bool:
        return (await detail(app, window_id))["window"]["phase"] == "rolled_back"

    await until(rolled_back, "the fail-closed rollback")
    assert fakes.rollbacks == 1


async def test_a_slow_watched_database_times_out_and_other_rules_keep_their_schedule(
    tmp_path: Path, fakes: Fakes, postgres_dsn: str
) -> None:
    file = rules(tmp_path, "pg.yml").group("g", "200ms")
    slow = "select pg_sleep(10)::text as label, 1 as value"
    file.postgres("slow-db", "app", slow, above=0, timeout="1s", action="rollback")
    file.postgres("fast-db", "app", "select 0 as value", above=0, action="rollback")
    plan = {"steps": [{"name": "call", "kind": "http", "url": f"{fakes.url}/rollback"}]}
    settings = served(
        tmp_path, file, token=TOKEN, postgres_targets={"app": SecretStr(postgres_dsn)}, tick=0.1,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"p": plan}, default_plan="p", http_allowed_hosts=["127.0.0.1"],
    )  # fmt: skip
    async with started(settings) as app:
        window_id = await open_window(app)

        async def two_slow_polls() -> dict[str, dict[str, Any]] | None:
            by_name = {r["name"]: r for r in (await detail(app, window_id))["rules"]}
            return by_name if len(by_name["slow-db"]["samples"]) >= 2 else None

        t0 = time.monotonic()
        rules_out = await until(two_slow_polls, "two timed-out polls of the slow rule")
        took = time.monotonic() - t0
    slow, fast = rules_out["slow-db"], rules_out["fast-db"]
    # pg_sleep(10) twice would take 20 s: the 1 s statement timeout cut both short.
    assert took < 10, took
    assert slow["verdict"] == "inconclusive" and "timeout" in (slow["reason"] or "")
    assert fast["verdict"] == "ok"
    # The fast rule was not held up by the slow one: it ran several times per slow poll.
    assert len(fast["samples"]) >= 2 * len(slow["samples"]), (fast["samples"], slow["samples"])
    assert fakes.rollbacks == 0
