"""Deploy markers through the real App: Grafana annotations and Sentry release deploys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from tests.rules import rules
from tests.servers.common import HANG_GUARD
from tests.servers.grafana import FakeGrafana
from tests.servers.sentry import FakeSentry
from tests.world import started
from watchdog.app import App
from watchdog.foundation.model import Deployment, WindowPhase
from watchdog.settings import Settings

pytestmark = pytest.mark.e2e
GRAFANA_TOKEN = "glsa_fake_service_account_token_0123"
SENTRY_TOKEN = "sntrys_fake_release_token_0123456789"


async def until(check: Callable[[], Any], timeout: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[tuple[App, FakeGrafana, FakeSentry, dict[str, Any]]]:
    state: dict[str, Any] = {"healthy": True, "rollbacks": 0}

    async def health(_r: web.Request) -> web.Response:
        return web.Response(status=200 if state["healthy"] else 503)

    async def rollback(_r: web.Request) -> web.Response:
        state["rollbacks"] += 1
        state["healthy"] = True
        return web.json_response({"ok": True})

    target = web.Application()
    target.router.add_get("/health", health)
    target.router.add_post("/rollback", rollback)
    runner, url = await serve(target)
    state["port"] = url.rsplit(":", 1)[1]
    grafana, sentry = FakeGrafana(GRAFANA_TOKEN), FakeSentry(SENTRY_TOKEN)
    sentry.releases |= {"v1", "v2"}
    await grafana.start()
    await sentry.start()
    probe = "http://127.0.0.1:{{ labels.port }}/health"
    file = rules(tmp_path).group("g", "0.2s")
    file.http("health", probe, action="rollback", severity="critical")
    settings = Settings(
        _env_file=None,
        rules=[file.write()],
        store_url=SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"),
        listen_port=0,
        tick=0.1, confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"main": {"steps": [{"name": "rb", "kind": "http", "url": f"{url}/rollback", "json": {}}]}},
        default_plan="main",
        http_allowed_hosts=["127.0.0.1"],
        sentry_url=sentry.url,
        sentry_org="acme",
        sentry_token=SENTRY_TOKEN,
        notify={"grafana_url": grafana.url, "grafana_token": GRAFANA_TOKEN,
                "grafana_dashboard_uid": "deploys", "backoff": 0.1, "backoff_max": 0.5, "poll": 0.05},
    )  # fmt: skip
    async with started(settings) as app:
        yield app, grafana, sentry, state
    await grafana.stop()
    await sentry.stop()
    await runner.cleanup()


async def test_a_rolled_back_deploy_leaves_its_markers_once_each(world: Any) -> None:
    app, grafana, sentry, state = world
    grafana.fail_next = [503]  # the first delivery fails: the worker retries it
    d = Deployment("api", "production", "v2", "v1", labels={"port": state["port"]})
    window = await app.parts.windows.open_window(d, window_seconds=600, actor="test")
    await until(lambda: len(sentry.deploys) == 1 and len(grafana.annotations) == 1)
    state["healthy"] = False
    await until(lambda: len(grafana.annotations) == 3 and len(sentry.deploys) == 2)
    await asyncio.sleep(0.3)  # let the worker drain: nothing more may arrive
    w = await app.parts.store.get_window(window.id)
    assert w.phase is WindowPhase.ROLLED_BACK and state["rollbacks"] == 1
    tags = [a["tags"] for a in grafana.annotations]
    assert tags == [["deploy", "api", "v2", "production"], ["rollback", "api", "v2", "production"],
                    ["rollback", "api", "v2", "production"]]  # fmt: skip
    assert [a["text"].split(".")[0] for a in grafana.annotations] == [
        "api v2: watch window opened", "api v2: rollback started (to v1)", "api v2: rolled back (to v1)"]  # fmt: skip
    assert all(a["dashboardUID"] == "deploys" for a in grafana.annotations)
    assert grafana.attempts == 4  # one retried 503, three deliveries
    assert [(x["version"], x["environment"]) for x in sentry.deploys] == [
        ("v2", "production"),
        ("v1", "production"),
    ]
    assert sentry.deploys[1]["name"] == "rollback of api v2"


async def test_a_passed_window_is_a_region_and_an_unknown_release_is_journaled(world: Any) -> None:
    app, grafana, sentry, state = world
    d = Deployment(
        "api", "production", "v9", "v1", labels={"port": state["port"]}
    )  # v9 unknown to Sentry
    window = await app.parts.windows.open_window(d, window_seconds=1, actor="test")
    await until(lambda: len(grafana.annotations) == 2, timeout=20)
    opened, passed = grafana.annotations
    assert passed["tags"][0] == "deploy" and passed["text"].startswith(
        "api v9: watch window passed"
    )
    assert passed["time"] == opened["time"] and passed["timeEnd"] > passed["time"]
    events = []

    async def failed() -> bool:
        events[:] = await app.parts.store.list_events(window.id)
        return any(e.kind == "notify_failed" for e in events)

    deadline = time.monotonic() + 10
    while not await failed():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    (note,) = [e for e in events if e.kind == "notify_failed"]
    assert "sentry deploys: HTTP 404" in note.message and sentry.deploys == []
