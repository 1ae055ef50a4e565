"""``max_open_windows`` and the retention job, in the real App over a real socket
(issue 13, item 7)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watchdog.app import App
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Window, WindowPhase
from watchdog.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "limits-token-0123456789"
RULES = "groups:\n  - name: g\n    interval: 1h\n    rules:\n      - name: up\n        source: http\n        url: http://127.0.0.1:9/health\n"

Start = Callable[..., Awaitable[App]]


@pytest.fixture
async def start_app(tmp_path: Path) -> AsyncIterator[Start]:
    apps: list[App] = []

    async def start(*, schedule: bool = False, **extra: Any) -> App:
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        values: dict[str, Any] = {
            "rules": [rules],
            "store_url": SecretStr(f"sqlite:///{tmp_path / f'wd{len(apps)}.db'}"),
            "listen_port": 0,
            "api_token": SecretStr(TOKEN),
            **extra,
        }
        app = App(Settings(**values), clock=FakeClock(start=time.time()))
        await app.start(schedule=schedule)
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop()


async def api(app: App, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        return await client.request(method, path, headers=headers, **kw)


async def deploy(app: App, service: str, version: str = "v2") -> httpx.Response:
    body = {"service": service, "version": version, "previous_version": "v1"}
    return await api(app, "POST", "/api/v1/deployments", json=body)


async def metric(app: App, sample: str) -> float:
    text = (await api(app, "GET", "/metrics")).text
    line = next((x for x in text.splitlines() if x.startswith(sample + " ")), None)
    return float(line.split()[1]) if line else 0.0


async def test_past_max_open_windows_the_api_answers_429_and_opens_nothing(
    start_app: Start,
) -> None:
    app = await start_app(max_open_windows=2)
    first = await deploy(app, "api")
    assert (await deploy(app, "worker")).status_code == 201
    refused = await deploy(app, "billing")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["message"] == (
        "2 windows are open (max_open_windows): not watching billing v2; close or abort "
        "finished windows, or raise max_open_windows"
    )
    listed = (await api(app, "GET", "/api/v1/deployments")).json()["windows"]
    assert sorted(w["service"] for w in listed) == ["api", "worker"]
    assert await metric(app, 'watchdog_windows_refused_total{actor="api"}') == 1
    # A new version of a service already watched replaces its window: not refused.
    again = await deploy(app, "api", "v3")
    assert again.status_code == 201, again.text
    # Closing one makes room.
    wid = again.json()["id"]
    assert (await api(app, "POST", f"/api/v1/deployments/{wid}/abort")).status_code == 200
    assert (await deploy(app, "billing")).status_code == 201
    assert first.status_code == 201


async def test_concurrent_deploys_never_exceed_the_limit(start_app: Start) -> None:
    app = await start_app(max_open_windows=3)
    answers = await asyncio.gather(*(deploy(app, f"svc{i}") for i in range(10)))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * 7


async def test_the_retention_job_prunes_old_closed_windows_in_the_background(
    start_app: Start,
) -> None:
    app = await start_app(
        schedule=True, retention="1h", retention_interval=0.1, retention_batch=100
    )
    assert app.parts is not None
    store, now = app.parts.store, app.clock.now()
    for wid, closed_at in (("old", now - 7200), ("recent", now - 600)):
        d = Deployment(service=wid, environment="prod", version="v2")
        await store.insert_window(Window(wid, d, WindowPhase.WATCHING, now - 9000, now, now))
        await store.set_phase(wid, WindowPhase.PASSED, at=closed_at)
    deadline = time.monotonic() + 10
    while await store.get_window("old") is not None:
        assert time.monotonic() < deadline, "the retention job never pruned the old window"
        await asyncio.sleep(0.05)
    assert await store.get_window("recent") is not None
    assert await metric(app, 'watchdog_pruned_rows_total{table="windows"}') == 1
