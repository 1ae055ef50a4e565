"""HttpSource against a local aiohttp server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.servers.common import free_port
from watchdog.foundation.model import Sample, SampleKind
from watchdog.rulefile.schema import HttpRule
from watchdog.sources import Sources
from watchdog.sources.base import SampleContext
from watchdog.sources.http import HttpSource, status_ok

CTX = SampleContext(window_id="w1", variables={"service": "api"}, at=1_800_000_000.0)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "checks": {"db": True, "cache": False}})


async def down(request: web.Request) -> web.Response:
    return web.json_response({"status": "down"}, status=503)


async def not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": "nope"}, status=404)


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://example.invalid/elsewhere")


async def text(request: web.Request) -> web.Response:
    return web.Response(text="all good")


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "token": request.headers.get("X-Token")})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    for path, handler in {
        "/health": health,
        "/down": down,
        "/missing": not_found,
        "/redirect": redirect,
        "/text": text,
        "/hang": hang,
    }.items():
        app.router.add_get(path, handler)
    app.router.add_get("/echo/{name}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


def probe(url: str, **kw: Any) -> HttpRule:
    return HttpRule(name="probe", source="http", url=url, **kw)


async def run(rule: HttpRule, ctx: SampleContext = CTX) -> Sample:
    src = HttpSource()
    try:
        return await src.sample(rule, ctx)
    finally:
        await src.close()


def value(sample: Sample) -> float:
    assert sample.kind is SampleKind.VALUES, sample
    return sample.series[0].value


CASES = [
    pytest.param("/health", {}, 0.0, "status 200", id="200-passes"),
    pytest.param("/down", {}, 1.0, "status 503", id="503-fails"),
    pytest.param("/missing", {"expect_status": "2xx,404"}, 0.0, "status 404", id="404-accepted"),
    pytest.param("/redirect", {}, 1.0, "status 302", id="redirect-not-followed"),
    pytest.param("/redirect", {"expect_status": "3xx"}, 0.0, "302", id="redirect-as-expected"),
    pytest.param("/health", {"json_field": "checks.db"}, 0.0, "checks.db = true", id="json-ok"),
    pytest.param(
        "/health",
        {"json_field": "checks.cache"},
        1.0,
        "json field checks.cache = false, expected true",
        id="json-falsy",
    ),
    pytest.param(
        "/health",
        {"json_field": "status", "json_equals": "ok"},
        0.0,
        'status = "ok"',
        id="json-equals",
    ),
    pytest.param(
        "/health",
        {"json_field": "status", "json_equals": "healthy"},
        1.0,
        'expected "healthy"',
        id="json-mismatch",
    ),
    pytest.param(
        "/health", {"json_field": "checks.redis"}, 1.0, "checks.redis is missing", id="json-missing"
    ),
    pytest.param("/text", {"json_field": "status"}, 1.0, "not JSON", id="json-not-json"),
    pytest.param(
        "/health",
        {"json_field": "checks.db", "json_equals": 1},
        1.0,
        "expected 1",
        id="json-true-is-not-1",
    ),
]


@pytest.mark.parametrize(("path", "fields", "expected", "detail"), CASES)
async def test_probe(
    server: str, path: str, fields: dict[str, Any], expected: float, detail: str
) -> None:
    sample = await run(probe(server + path, **fields))
    assert value(sample) == expected
    assert sample.detail is not None and detail in sample.detail


async def test_connection_refused() -> None:
    port = free_port()
    sample = await run(probe(f"http://127.0.0.1:{port}/health"))
    assert value(sample) == 1.0
    assert sample.detail == f"127.0.0.1:{port}: connection refused"


async def test_timeout(server: str) -> None:
    sample = await run(probe(server + "/hang", timeout="50ms"))
    assert value(sample) == 1.0
    assert sample.detail == "timed out after 0.05s"


async def test_url_template_headers_and_escaping(server: str) -> None:
    client = httpx.AsyncClient()
    src = HttpSource(client)
    rule = probe(server + "/echo/{{ service }}", headers={"X-Token": "t"}, json_field="token")
    sample = await src.sample(rule, CTX)
    await src.close()
    assert not client.is_closed  # a client passed in stays the caller's
    await client.aclose()
    assert value(sample) == 0.0


async def test_unsafe_variable_is_permanent(server: str) -> None:
    ctx = SampleContext(window_id="w1", variables={"service": "../admin?x=1"}, at=CTX.at)
    sample = await run(probe(server + "/echo/{{ service }}"), ctx)
    assert sample.kind is SampleKind.ERROR and not sample.transient


async def test_not_live_is_refused(server: str) -> None:
    ctx = SampleContext(window_id="w1", variables={}, at=CTX.at, live=False)
    sample = await run(probe(server + "/health"), ctx)
    assert sample.kind is SampleKind.ERROR and not sample.transient
    assert sample.error == "http probes cannot look back in time"


@pytest.mark.parametrize(
    ("code", "expect", "ok"),
    [(200, "2xx", True), (204, "200", False), (404, "2xx,404", True), (500, "2xx,4xx", False)],
)
def test_status_ok(code: int, expect: str, ok: bool) -> None:
    assert status_ok(code, expect) is ok


async def test_sources_registry() -> None:
    http = HttpSource()
    sources = Sources({"http": http})
    assert sources.get("http") is http
    with pytest.raises(Exception, match="'postgres'"):
        sources.get("postgres")
    await sources.close()
