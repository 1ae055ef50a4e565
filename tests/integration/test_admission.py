"""Issue 13 item 6: late errors at the door, against a real App (store, API, detector).

An unknown plan is a 422 naming the known plans (API and CLI); a ``previous_version``
the watchdog never saw running for the service (tracked by detection, or with windows
on record) is refused unless ``force``, and journaled either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from tests.rules import rules
from tests.world import api, served, started
from watchdog.app import App
from watchdog.cli.main import main
from watchdog.foundation.model import EventKind
from watchdog.settings import Settings

pytestmark = pytest.mark.integration

TOKEN = "admission-token-0123456789"
PLAN = {"steps": [{"name": "undo", "kind": "command", "argv": ["true"]}]}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    serving = {"version": "v1"}

    async def version(_: web.Request) -> web.Response:
        return web.json_response(serving)

    target = web.Application()
    target.router.add_get("/version", version)
    runner, url = await serve(target)
    file = rules(tmp_path).group("g", None).http("up", f"{url}/version", action="notify")
    settings = served(
        tmp_path, file, token=TOKEN, plans={"main": PLAN, "helm-undo": PLAN}, default_plan="main",
        detect=[{"service": "api", "environment": "prod", "url": f"{url}/version"}],
    )  # fmt: skip
    async with started(settings, schedule=False) as app:
        yield app
    await runner.cleanup()


async def post(app: App, body: dict[str, Any]) -> httpx.Response:
    return await api(app, "POST", "/api/v1/deployments", token=TOKEN, json=body)


async def test_an_unknown_plan_is_422_naming_the_known_plans(app: App) -> None:
    r = await post(app, {"service": "web", "version": "v2", "plan": "helm-undoo"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "plan"
    assert error["message"] == "unknown plan 'helm-undoo'; known plans: helm-undo, main"
    assert (await post(app, {"service": "web", "version": "v2", "plan": "helm-undo"})).is_success
    assert app.parts is not None
    assert [w.deployment.plan for w in await app.parts.store.list_windows()] == ["helm-undo"]


async def test_the_cli_says_the_same(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_API_TOKEN", TOKEN)
    argv = ["deploy", "--url", app.url, "start", "--service", "web", "--version", "v2"]
    code = await asyncio.to_thread(main, [*argv, "--plan", "nope"])
    assert code != 0
    assert "422: unknown plan 'nope'; known plans: helm-undo, main" in capsys.readouterr().err


async def test_an_unseen_previous_version_is_refused_unless_forced(
    app: App, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert app.parts is not None and app.parts.detector is not None
    await app.parts.detector.tick()  # reads v1 serving: the service's history begins
    first = await post(app, {"service": "api", "environment": "prod", "version": "v2"})
    assert first.status_code == 201
    body = {"service": "api", "environment": "prod", "version": "v3", "previous_version": "v0"}
    refused = await post(app, body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "previous_version"
    assert "'v0' was never seen running for api in prod (seen: v1, v2)" in error["message"]
    assert "force" in error["message"]
    events = await app.parts.store.list_events(first.json()["id"])
    [note] = [e for e in events if e.kind is EventKind.DEPLOY_REFUSED]
    assert "api: deploy of v3 refused" in note.message and note.data["previous_version"] == "v0"

    forced = await post(app, {**body, "force": True})
    assert forced.status_code == 201, forced.text
    opened = (await app.parts.store.list_events(forced.json()["id"]))[0]
    assert opened.kind is EventKind.WINDOW_OPENED
    assert "registered anyway (api said force)" in opened.message
    assert opened.data["forced"] is True
    # A version seen running (read by the detector, or a window's) needs no force.
    for previous in ("v1", "v2", "v3"):
        ok = await post(app, {**body, "version": f"v9-{previous}", "previous_version": previous})
        assert ok.status_code == 201, ok.text
    # The CLI's --force says the same.
    monkeypatch.setenv("WATCHDOG_API_TOKEN", TOKEN)
    argv = ["deploy", "--url", app.url, "start", "--service", "api", "--environment", "prod"]
    argv += ["--version", "v10", "--previous-version", "v-1"]
    assert await asyncio.to_thread(main, argv) != 0
    assert "never seen running" in capsys.readouterr().err
    assert await asyncio.to_thread(main, [*argv, "--force"]) == 0


async def test_an_untracked_service_is_checked_against_its_windows(app: App) -> None:
    """Issue 25 low: the check covered only services detection tracks. For any other,
    the store's record (its windows' versions and the versions they named as running
    before) is the history; with no record at all the deploy is taken and journaled."""
    assert app.parts is not None
    body = {"service": "web", "version": "v2", "previous_version": "v1"}
    first = await post(app, body)
    assert first.status_code == 201, first.text
    opened = (await app.parts.store.list_events(first.json()["id"]))[0]
    assert opened.message.endswith(
        "; previous_version v1 not checked: no earlier deployment of web in production is on record"
    )
    assert opened.data["previous_version_unchecked"] is True and "forced" not in opened.data

    typo = await post(app, {"service": "web", "version": "v3", "previous_version": "v2.0"})
    assert typo.status_code == 422, typo.text
    error = typo.json()["error"]
    assert error["field"] == "previous_version"
    assert error["message"] == (
        "previous_version 'v2.0' was never seen running for web in production "
        "(seen: v1, v2); pass force to register it anyway"
    )
    [note] = [
        e
        for e in await app.parts.store.list_events(first.json()["id"])
        if e.kind is EventKind.DEPLOY_REFUSED
    ]
    assert note.data["previous_version"] == "v2.0"
    forced = await post(app, {"service": "web", "version": "v3", "previous_version": "v2.0",
                              "force": True})  # fmt: skip
    assert forced.status_code == 201, forced.text
    assert (await app.parts.store.list_events(forced.json()["id"]))[0].data["forced"] is True
    # Versions on record need no force: a window's, and one a window named as before
    # (the same deployment re-posted, or a return to what ran before a rollback).
    for previous in ("v3", "v2", "v1"):
        again = await post(app, {"service": "web", "version": "v4", "previous_version": previous})
        assert again.status_code == 201, again.text
        assert (
            "not checked" not in (await app.parts.store.list_events(again.json()["id"]))[0].message
        )
    # Another environment of the same service has a record of its own: none yet.
    other = await post(app, {**body, "environment": "staging", "previous_version": "v0"})
    assert other.status_code == 201, other.text


# --- issue 21 item 4: previous_version from what the watchdog knows ---------------------
async def test_an_omitted_previous_version_is_the_version_last_seen_running(app: App) -> None:
    assert app.parts is not None and app.parts.detector is not None
    await app.parts.detector.tick()  # the detector reads v1 serving
    r = await post(app, {"service": "api", "environment": "prod", "version": "v2"})
    assert r.status_code == 201, r.text
    assert r.json()["previous_version"] == "v1"
    [opened] = (await app.parts.store.list_events(r.json()["id"]))[:1]
    assert opened.data["previous_version"] == "v1"
    assert "previous version v1: the version the deploy detector last read serving" in (
        opened.message
    )


async def test_without_the_detector_the_previous_window_tells(app: App) -> None:
    assert app.parts is not None
    first = await post(app, {"service": "web", "version": "v4", "previous_version": "v3"})
    assert first.status_code == 201, first.text
    second = await post(app, {"service": "web", "version": "v5"})
    assert second.status_code == 201, second.text
    assert second.json()["previous_version"] == "v4"
    opened = (await app.parts.store.list_events(second.json()["id"]))[0]
    assert (
        opened.data["previous_version_from"]
        == f"what window {first.json()['id']} (v4) left running"
    )


async def test_unknown_and_needed_by_the_plan_is_refused_saying_what_to_pass(
    tmp_path: Path,
) -> None:
    plan = {
        "steps": [{"name": "pin", "kind": "command", "argv": ["deploy", "{{ previous_version }}"]}]
    }
    settings = Settings(
        rules=[],
        store_url=SecretStr("sqlite:///:memory:"),
        listen_port=0,
        api_token=SecretStr(TOKEN),
        plans={"pin": plan, "plain": PLAN},
        default_plan="pin",
    )
    async with started(settings, schedule=False) as app:
        refused = await post(app, {"service": "new", "version": "v1"})
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["field"] == "previous_version"
        assert error["message"] == (
            "previous_version is needed: plan 'pin' rolls back to {{ previous_version }}, and "
            "the watchdog has not seen new running in production; pass the version running "
            "before this deploy (--previous-version, or previous_version in the API)"
        )
        # A plan that does not roll back to a version takes the deploy as it is.
        ok = await post(app, {"service": "new", "version": "v1", "plan": "plain"})
        assert ok.status_code == 201 and ok.json()["previous_version"] is None
