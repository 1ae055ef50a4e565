"""The whole loop with real parts: a real Prometheus scraping the demo app, the watchdog
App (scheduler, engine, pipeline, store, API) in-process on a real clock, and the demo
app's /rollback endpoint as the rollback target. Counts what that endpoint received."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from examples.stack import DemoApp, PromStack, start_prometheus, wait_for_query
from tests import world
from tests.rules import rules
from tests.servers.common import HANG_GUARD
from tests.world import served, starting
from watchdog.app import App
from watchdog.settings import Settings

pytestmark = pytest.mark.e2e

TOKEN = "e2e-token-abcdef123456"
Factory = Callable[..., Any]
RATIO = """\
sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[5s]))
/ sum(rate(http_requests_total{service="{{ service }}"}[5s]))
"""


def settings_for(tmp_path: Path, prom_url: str, store_url: str, **extra: Any) -> Settings:
    file = rules(tmp_path).group("demo", "1s")
    file.prometheus(
        "http-5xx-ratio", RATIO, above="5%", for_="2s", action="rollback", severity="critical"
    )
    file.http("health", "http://127.0.0.1:{{ labels.port }}/health", for_="30s", action="rollback")
    call = {
        "name": "call-rollback",
        "kind": "http",
        "url": "http://127.0.0.1:{{ labels.port }}/rollback",
        "json": {"version": "{{ previous_version }}"},
        "retries": 2,
        "backoff": "100ms",
    }
    return served(
        tmp_path, file, token=TOKEN, store_url=SecretStr(store_url), prometheus_url=prom_url,
        prometheus_timeout=1.0, tick=0.2,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"demo": {"steps": [call]}}, default_plan="demo",
        http_allowed_hosts=["127.0.0.1"], **extra,
    )  # fmt: skip


@pytest.fixture
async def watchdog_app(tmp_path: Path) -> AsyncIterator[Factory]:
    async with starting() as start:

        async def begin(prom_url: str, store_url: str | None = None, **extra: Any) -> App:
            url = store_url or f"sqlite:///{tmp_path / 'wd.db'}"
            return await start(settings_for(tmp_path, prom_url, url, **extra))

        yield begin


async def api(app: App, method: str, path: str, **kw: Any) -> httpx.Response:
    return await world.api(app, method, path, token=TOKEN, **kw)


async def open_window(app: App, demo: DemoApp, window: str = "10m") -> dict[str, Any]:
    body = {
        "service": demo.service,
        "environment": "e2e",
        "version": "v2",
        "previous_version": "v1",
        "labels": {"port": str(demo.port)},
        "window": window,
    }
    response = await api(app, "POST", "/api/v1/deployments", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_for(
    app: App, window_id: str, done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        detail = (await api(app, "GET", f"/api/v1/deployments/{window_id}")).json()
        if done(detail) or time.monotonic() > deadline:
            return dict(detail)
        await asyncio.sleep(0.2)


async def until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll a condition on the running app until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return check()


async def ticks_pass(app: App, count: int, timeout: float = HANG_GUARD) -> None:
    """Wait for ``count`` more completed engine ticks, then for what they started."""
    assert app.parts is not None
    engine = app.parts.engine
    target = engine.ticks + count
    assert await until(lambda: engine.ticks >= target, timeout), "the engine stopped ticking"
    await engine.drain()


def evaluations(app: App, rule: str, verdict: str) -> float:
    assert app.parts is not None
    labels = {"rule": rule, "verdict": verdict}
    return app.parts.registry.get_sample_value("watchdog_rule_evaluations_total", labels) or 0.0


def calls_for(demo: DemoApp, window_id: str) -> list[dict[str, Any]]:
    """Rollback calls this window made (the executor sends Idempotency-Key: WINDOW:STEP)."""
    calls = demo.rollback_calls()
    return [c for c in calls if str(c["headers"].get("Idempotency-Key", "")).startswith(window_id)]


@pytest.fixture
def stack(prom_stack: PromStack) -> PromStack:
    prom_stack.demo.heal()
    yield prom_stack
    prom_stack.demo.heal()


async def test_healthy_window_passes_with_zero_rollbacks(
    stack: PromStack, watchdog_app: Factory
) -> None:
    app = await watchdog_app(stack.prom_url)
    window = await open_window(app, stack.demo, window="8s")
    detail = await wait_for(
        app, window["id"], lambda d: d["window"]["phase"] == "passed", HANG_GUARD
    )
    assert detail["window"]["phase"] == "passed"
    assert calls_for(stack.demo, window["id"]) == []
    rules = {r["name"]: r for r in detail["rules"]}
    assert rules["http-5xx-ratio"]["verdict"] == "ok" and rules["http-5xx-ratio"]["last_value"] == 0
    assert rules["health"]["verdict"] == "ok"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[0] == "window_opened" and kinds[-1] == "window_passed"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_spike_rolls_back_exactly_once(
    stack: PromStack, watchdog_app: Factory, backend: str, request: pytest.FixtureRequest
) -> None:
    store_url = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    app = await watchdog_app(stack.prom_url, store_url)
    window = await open_window(app, stack.demo)
    await wait_for(app, window["id"], lambda d: d["rules"][0]["last_value"] is not None, HANG_GUARD)
    stack.demo.set_fault(error_ratio=0.4)
    detail = await wait_for(
        app, window["id"], lambda d: d["window"]["phase"] == "rolled_back", HANG_GUARD
    )
    assert detail["window"]["phase"] == "rolled_back", detail["events"]
    # the app is healed by the rollback; re-inject the fault, wait until Prometheus sees
    # it again, then for more ticks than a firing takes (interval 1s + for 2s): no second call
    stack.demo.set_fault(error_ratio=0.4)
    ratio = f'sum(rate(http_requests_total{{service="{stack.demo.service}",status=~"5.."}}[5s]))'
    await asyncio.to_thread(
        wait_for_query, stack.prom_url, ratio, lambda v: bool(v and v[0] > 0), 30
    )
    await ticks_pass(app, 20)
    calls = calls_for(stack.demo, window["id"])
    assert len(calls) == 1
    assert calls[0]["body"] == {"version": "v1"}
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("rollback_started") == 1 and kinds.count("rollback_succeeded") == 1
    assert (
        kinds.index("rule_pending") < kinds.index("rule_firing") < kinds.index("rollback_started")
    )


async def test_prometheus_stopped_mid_window_is_inconclusive_never_a_rollback(
    stack: PromStack, watchdog_app: Factory, tmp_path: Path
) -> None:
    with start_prometheus(tmp_path, [stack.demo.target]) as prom:
        wait_for_query(prom.url, 'up{job="demo"}', lambda v: v == [1.0], timeout=HANG_GUARD)
        app = await watchdog_app(prom.url)
        window = await open_window(app, stack.demo)
        await wait_for(app, window["id"], lambda d: d["rules"][0]["verdict"] == "ok", HANG_GUARD)
        prom.stop()
        stack.demo.set_fault(error_ratio=0.5)  # a real fault Prometheus can no longer see
        detail = await wait_for(
            app, window["id"], lambda d: d["rules"][0]["verdict"] == "inconclusive", 15
        )
        # many more polls of the dead Prometheus, each judged inconclusive, never firing
        polls = evaluations(app, "http-5xx-ratio", "inconclusive") + 4
        assert await until(
            lambda: evaluations(app, "http-5xx-ratio", "inconclusive") >= polls, HANG_GUARD
        )
        await ticks_pass(app, 1)
        detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
    rule = detail["rules"][0]
    assert rule["verdict"] == "inconclusive" and "error" in rule["reason"]
    assert detail["window"]["phase"] == "watching"
    assert calls_for(stack.demo, window["id"]) == []


async def test_manual_hold_then_rollback_through_the_api(
    stack: PromStack, watchdog_app: Factory
) -> None:
    app = await watchdog_app(stack.prom_url)
    window = await open_window(app, stack.demo)
    held = await api(
        app, "POST", f"/api/v1/deployments/{window['id']}/hold", json={"actor": "alice"}
    )
    assert held.status_code == 200 and held.json()["phase"] == "held"
    stack.demo.set_fault(error_ratio=0.5)
    detail = await wait_for(
        app, window["id"], lambda d: any(e["kind"] == "action_suppressed" for e in d["events"]), 30
    )
    assert detail["window"]["phase"] == "held"
    assert calls_for(stack.demo, window["id"]) == []
    rolled = await api(
        app, "POST", f"/api/v1/deployments/{window['id']}/rollback", json={"actor": "alice"}
    )
    assert rolled.status_code == 200, rolled.text
    detail = await wait_for(
        app, window["id"], lambda d: d["window"]["phase"] == "rolled_back", HANG_GUARD
    )
    assert len(calls_for(stack.demo, window["id"])) == 1
    again = await api(app, "POST", f"/api/v1/deployments/{window['id']}/rollback", json={})
    assert again.status_code == 409
    assert len(calls_for(stack.demo, window["id"])) == 1
