"""Hot reload through ``POST /-/reload`` of a real App: build-then-swap, state kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from tests.yaml_bombs import RECURSIVE_ALIAS, alias_bomb, deep_nesting
from watchdog.app import App
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Verdict
from watchdog.settings import Settings
from watchdog.sources.kinds import KINDS

KNOWN = ", ".join(KINDS)  # every kind of the table, in its order

TOKEN = "reload-token-0123456789"


def rules_text(url: str, other_for: str = "1m", extra: str = "") -> str:
    rule = "      - name: {n}\n        source: http\n        url: {u}/health\n        for: {f}\n        action: notify\n"
    return (
        "groups:\n  - name: g\n    interval: 10s\n    rules:\n"
        + rule.format(n="health", u=url, f="1m")
        + rule.format(n="other", u=url, f=other_for)
        + extra
    )


@pytest.fixture
async def broken() -> AsyncIterator[str]:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({}, status=500)

    app = web.Application()
    app.router.add_get("/health", health)
    runner, url = await serve(app)
    yield url
    await runner.cleanup()


@pytest.fixture
async def app(tmp_path: Path, broken: str) -> AsyncIterator[App]:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_text(broken))
    settings = Settings(
        rules=[rules],
        store_url=SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"),
        listen_port=0,
        api_token=SecretStr(TOKEN),
    )
    app = App(settings, clock=FakeClock())
    await app.start(schedule=False)
    yield app
    await app.stop()


async def call(
    app: App, method: str, path: str, token: str | None = TOKEN, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        return await client.request(method, path, headers=headers, **kw)


async def metric(app: App, name: str) -> float:
    text = (await call(app, "GET", "/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith(name + " "))
    return float(line.split()[1])


async def test_reload_needs_the_bearer_token(app: App) -> None:
    assert (await call(app, "POST", "/-/reload", token=None)).status_code == 401
    assert (await call(app, "POST", "/-/reload", token="wrong-token-123456")).status_code == 401


async def test_a_bad_file_keeps_the_old_rules_and_says_where(
    app: App, tmp_path: Path, broken: str
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_text(broken, extra="      - name: bad\n        source: nope\n"))
    response = await call(app, "POST", "/-/reload")
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["rules"] == 2
    assert body["errors"] == [f"{rules}:16: unknown source 'nope' (expected one of: {KNOWN})"]
    assert await metric(app, "watchdog_rules_last_reload_successful") == 0
    assert await metric(app, "watchdog_rules") == 2
    assert app.parts is not None
    assert [r.name for r in app.parts.engine.rules.current.rules] == ["health", "other"]

    third = f"      - name: third\n        source: http\n        url: {broken}/health\n"
    rules.write_text(rules_text(broken, extra=third))
    response = await call(app, "POST", "/-/reload")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "rules": 3,
        "errors": [],
        "added": ["third"],
        "changed": [],
        "removed": [],
    }
    assert await metric(app, "watchdog_rules_last_reload_successful") == 1
    assert await metric(app, "watchdog_rules") == 3


async def test_open_windows_keep_the_state_of_unchanged_rules(
    app: App, tmp_path: Path, broken: str
) -> None:
    assert app.parts is not None
    engine, clock = app.parts.engine, app.clock
    assert isinstance(clock, FakeClock)
    body = {"service": "api", "version": "v2", "previous_version": "v1"}
    window = (await call(app, "POST", "/api/v1/deployments", json=body)).json()
    await engine.tick()
    await engine.drain()
    before = await engine.states(window["id"])
    assert {n: s.verdict for n, s in before.items()} == {
        "health": Verdict.PENDING,
        "other": Verdict.PENDING,
    }

    clock.advance(5)
    (tmp_path / "rules.yml").write_text(rules_text(broken, other_for="2m"))
    response = await call(app, "POST", "/-/reload")
    assert response.json()["changed"] == ["other"]
    after = await engine.states(window["id"])
    assert after == {"health": before["health"]}  # `for` progress kept; `other` starts over

    clock.advance(10)
    await engine.tick()
    await engine.drain()
    states = await engine.states(window["id"])
    assert states["health"].pending_since == before["health"].pending_since
    assert states["other"].pending_since != before["other"].pending_since
    assert list(states["other"].pending_since.values()) == [clock.now()]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (alias_bomb(), 6, "more than 100,000 nodes once aliases are expanded"),
        (RECURSIVE_ALIAS, 3, "recursive alias *g"),
        (deep_nesting(5000), 1, "nested deeper than 64 levels"),
    ],
    ids=["alias-bomb", "recursive-alias", "deep-nesting"],
)
async def test_hostile_yaml_is_a_422_and_the_rules_stay(
    app: App, tmp_path: Path, text: str, line: int, words: str
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(text)
    response = await call(app, "POST", "/-/reload")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["ok"] is False and body["rules"] == 2
    assert body["errors"] == [
        f"{rules}:{line}: YAML over limits: {body['errors'][0].split(': ', 2)[2]}"
    ]
    assert words in body["errors"][0]
    assert await metric(app, "watchdog_rules_last_reload_successful") == 0
    assert app.parts is not None
    assert [r.name for r in app.parts.engine.rules.current.rules] == ["health", "other"]


async def test_an_empty_rule_directory_is_not_ready_and_links_out_are_never_quoted(
    tmp_path: Path, broken: str
) -> None:
    """Issue 25 low: an empty rule directory started with 0 rules and said ready; a
    ``x.yml -> /etc/shadow`` link made the reload's 422 quote the file's first line."""
    folder = tmp_path / "rules"
    folder.mkdir()
    settings = Settings(
        rules=[folder],
        store_url=SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"),
        listen_port=0,
        api_token=SecretStr(TOKEN),
    )
    app = App(settings, clock=FakeClock())
    await app.start(schedule=False)
    try:
        ready = await call(app, "GET", "/readyz", token=None)
        assert ready.status_code == 503, ready.text
        assert ready.json()["error"]["message"] == f"not ready: no rules loaded from {folder}/"
        assert (await call(app, "GET", "/healthz", token=None)).status_code == 200  # alive

        (tmp_path / "shadow").write_text("root-hunter2-secret: x\n")
        (folder / "shadow.yml").symlink_to(tmp_path / "shadow")
        refused = await call(app, "POST", "/-/reload")
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            f"{folder}/shadow.yml:0: not read: a symlink to a file outside {folder}/ "
            "(name that file itself in WATCHDOG_RULES to load it)"
        ]
        assert "hunter2" not in refused.text
        (folder / "shadow.yml").unlink()

        (folder / "rules.yml").write_text(rules_text(broken))
        assert (await call(app, "POST", "/-/reload")).json()["rules"] == 2
        ready = await call(app, "GET", "/readyz", token=None)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    finally:
        await app.stop()
