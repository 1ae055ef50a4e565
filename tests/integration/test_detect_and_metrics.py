"""Deploy auto-detection against the real demo app, the ``verify`` step reading the
version it serves, and a real Prometheus scraping the running watchdog's /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import DemoApp, start_demo_app, start_prometheus, wait_for_query
from tests import world
from tests.rules import rules
from tests.servers.common import HANG_GUARD
from tests.world import served
from watchdog.app import App
from watchdog.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "detect-token-0123456789"


def settings(tmp_path: Path, demo: DemoApp) -> Settings:
    health = "http://127.0.0.1:{{ labels.port }}/health"
    file = rules(tmp_path).group("demo", "1s").http("health", health, for_="1m", action="rollback")
    plan = {
        "steps": [
            {
                "kind": "http",
                "name": "rollback",
                "url": "http://127.0.0.1:{{ labels.port }}/rollback",
                "json": {"version": "{{ previous_version }}"},
            },
            {
                "kind": "verify",
                "name": "serving",
                "url": "http://127.0.0.1:{{ labels.port }}/state",
                "json_field": "version",
                "poll_interval": "200ms",
                "timeout": "10s",
            },
        ]
    }
    watched = {
        "service": demo.service,
        "environment": "it",
        "url": f"{demo.url}/state",
        "json_field": "version",
        "interval": "200ms",
        "labels": {"port": str(demo.port)},
        "plan": "demo",
    }
    return served(
        tmp_path,
        file,
        token=TOKEN,
        tick=0.2,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"demo": plan},
        http_allowed_hosts=["127.0.0.1"],
        detect=[watched],
    )


async def api(app: App, method: str, path: str, **kw: Any) -> httpx.Response:
    return await world.api(app, method, path, token=TOKEN, **kw)


async def windows_of(app: App, service: str) -> list[dict[str, Any]]:
    response = await api(app, "GET", "/api/v1/deployments", params={"service": service})
    assert response.status_code == 200, response.text
    return list(response.json()["windows"])


async def until(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


class CountingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, counting the watchdog's requests by path (the seam
    App.build offers), so the test waits for detector reads instead of sleeping."""

    def __init__(self) -> None:
        self._real = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()

    async def reads_after(self, seen: int, more: int) -> bool:
        """Wait until ``more`` version reads followed the first ``seen``."""
        return bool(await until(lambda: self._reads(seen + more), HANG_GUARD))

    async def _reads(self, wanted: int) -> bool:
        return self.paths.count("/state") >= wanted


async def test_version_flip_opens_a_window_and_our_rollback_does_not(tmp_path: Path) -> None:
    transport = CountingTransport()
    with start_demo_app(tmp_path, service="shop", rps=5, version="v1") as demo:
        app = App.build(settings(tmp_path, demo), transport=transport)
        await app.start()
        try:
            with start_prometheus(tmp_path, [f"127.0.0.1:{app.port}"], "1s") as prom:
                assert await transport.reads_after(0, 3)  # detector reads of v1: the baseline
                assert await windows_of(app, "shop") == []
                # "deploy" v2: the demo app's /rollback endpoint sets the version it serves
                httpx.post(
                    f"{demo.url}/rollback", json={"version": "v2"}, timeout=5
                ).raise_for_status()
                opened = await until(lambda: windows_of(app, "shop"), HANG_GUARD)
                assert len(opened) == 1, opened
                window = opened[0]
                assert (window["version"], window["previous_version"]) == ("v2", "v1")

                rolled = await api(
                    app,
                    "POST",
                    f"/api/v1/deployments/{window['id']}/rollback",
                    json={"actor": "bob"},
                )
                assert rolled.status_code == 200, rolled.text

                async def rolled_back() -> bool:
                    detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
                    return bool(detail["window"]["phase"] == "rolled_back")

                assert await until(rolled_back, HANG_GUARD)
                assert demo.state()["version"] == "v1"
                # verify has seen v1: every read from here is the detector's, of v1 again
                assert await transport.reads_after(transport.paths.count("/state"), 5)
                assert len(await windows_of(app, "shop")) == 1

                # The App answers scrapes on this event loop: poll Prometheus from a thread.
                async def scraped(query: str) -> list[float]:
                    return await asyncio.to_thread(
                        wait_for_query, prom.url, query, lambda v: v == [1.0], 30
                    )

                await scraped(f'up{{job="demo",instance="127.0.0.1:{app.port}"}}')
                assert await scraped(
                    'watchdog_rollbacks_total{service="shop",result="rolled_back"}'
                ) == [1.0]
                assert await scraped('watchdog_deploys_detected_total{service="shop"}') == [1.0]
                assert await scraped("watchdog_leader") == [1.0]
        finally:
            await app.stop()
