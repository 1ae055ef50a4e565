from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.servers.common import free_port
from watchdog.actions.base import ActionContext
from watchdog.actions.http import HttpExecutor, status_matches
from watchdog.actions.spec import HttpStep
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Window, WindowPhase
from watchdog.plumbing.httpedge import parse_retry_after


@dataclass
class Received:
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    """A loopback aiohttp server that records every request and answers as told."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = '{"ok": true}'
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hang: bool = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(
                request.method,
                request.path,
                request.raw_path,
                request.query_string,
                dict(request.headers),
                await request.read(),
            )
        )
        if self.hang:
            await self.release.wait()
        return web.Response(status=self.status, text=self.body, headers=self.headers)


async def _serve(server: FakeServer) -> AsyncIterator[FakeServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async for server in _serve(FakeServer()):
        yield server


@pytest.fixture
async def other() -> AsyncIterator[FakeServer]:
    async for server in _serve(FakeServer()):
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def context(version: str = "v2.1.0") -> ActionContext:
    deployment = Deployment(
        service="api", environment="prod", version=version, previous_version="v2.0.9"
    )
    window = Window("win42", deployment, WindowPhase.ROLLING_BACK, 0.0, 1800.0, 0.0)
    return ActionContext(window=window, variables=deployment.template_vars())


def step(url: str, **kw: Any) -> HttpStep:
    return HttpStep.model_validate({"kind": "http", "name": "deploy-api", "url": url, **kw})


async def test_success_sends_rendered_request(fake: FakeServer, client: httpx.AsyncClient) -> None:
    executor = HttpExecutor(client, [fake.host])
    s = step(
        f"http://{fake.host}/services/{{{{ service }}}}/rollback?to={{{{ previous_version }}}}",
        headers={"X-Env": "{{ environment }}", "Authorization": "Bearer t0ken"},
        json={"service": "{{ service }}", "nested": [{"v": "{{ version }}"}, 3], "n": None},
    )
    result = await executor.run(s, context())
    assert result.data == {"status": 200}
    assert result.output == '{"ok": true}'
    (got,) = fake.received
    assert got.method == "POST"
    assert got.path == "/services/api/rollback"
    assert got.query == "to=v2.0.9"
    assert got.headers["X-Env"] == "prod"
    assert got.headers["Authorization"] == "Bearer t0ken"
    assert got.headers["Idempotency-Key"] == "win42:deploy-api"
    assert json.loads(got.body) == {"service": "api", "nested": [{"v": "v2.1.0"}, 3], "n": None}


async def test_url_values_are_escaped(fake: FakeServer, client: httpx.AsyncClient) -> None:
    ctx = context(version="team/v1+2")
    await HttpExecutor(client, [fake.host]).run(
        step(f"http://{fake.host}/v/{{{{ version }}}}", method="GET"), ctx
    )
    (got,) = fake.received
    assert got.method == "GET" and got.body == b""
    assert got.raw_path == "/v/team%2Fv1%2B2"  # one path segment: no path traversal


async def test_output_is_truncated(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.body = "x" * 10_000
    result = await HttpExecutor(client, [fake.host]).run(step(f"http://{fake.host}/"), context())
    assert result.output == "x" * 2048


async def test_host_not_allowed_sends_nothing(fake: FakeServer, client: httpx.AsyncClient) -> None:
    executor = HttpExecutor(client, ["deploy.example.com", f"127.0.0.1:{fake.port + 1}"])
    with pytest.raises(PermanentError, match="not in http_allowed_hosts"):
        await executor.run(step(f"http://{fake.host}/rollback"), context())
    assert fake.received == []


async def test_bare_host_allows_any_port_case_insensitive(
    fake: FakeServer, client: httpx.AsyncClient
) -> None:
    await HttpExecutor(client, ["LOCALHOST"]).run(step(f"http://localhost:{fake.port}/"), context())
    assert len(fake.received) == 1


async def test_userinfo_trick_does_not_pass_host_check(
    fake: FakeServer, client: httpx.AsyncClient
) -> None:
    executor = HttpExecutor(client, ["allowed.example.com"])
    with pytest.raises(PermanentError):
        await executor.run(step(f"http://allowed.example.com@{fake.host}/"), context())
    assert fake.received == []


async def test_503_is_transient(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.status, fake.body = 503, "upstream down"
    with pytest.raises(TransientError, match="503: upstream down") as info:
        await HttpExecutor(client, [fake.host]).run(step(f"http://{fake.host}/"), context())
    assert info.value.retry_after is None


async def test_429_retry_after_seconds(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.status, fake.headers = 429, {"Retry-After": "12"}
    with pytest.raises(TransientError) as info:
        await HttpExecutor(client, [fake.host]).run(step(f"http://{fake.host}/"), context())
    assert info.value.retry_after == 12.0


def test_retry_after_http_date_relative_to_response_date() -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    later = "Wed, 21 Oct 2015 07:28:45 GMT"
    assert parse_retry_after(later, date, now=0.0) == 45.0
    assert parse_retry_after("garbage", date, now=0.0) is None
    assert parse_retry_after(None, None, now=0.0) is None
    assert parse_retry_after(later, None, now=1445412480.0) == 45.0


async def test_400_is_permanent_with_excerpt(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.status, fake.body = 400, '{"error": "unknown version"}'
    with pytest.raises(PermanentError, match=r"returned 400: .*unknown version"):
        await HttpExecutor(client, [fake.host]).run(step(f"http://{fake.host}/"), context())


async def test_expect_status_list(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.status = 202
    executor = HttpExecutor(client, [fake.host])
    result = await executor.run(step(f"http://{fake.host}/", expect_status="200,202"), context())
    assert result.data == {"status": 202}
    with pytest.raises(PermanentError):
        await executor.run(step(f"http://{fake.host}/", expect_status="200"), context())
    with pytest.raises(PermanentError, match="expect_status"):
        await executor.run(step(f"http://{fake.host}/", expect_status="2x"), context())


def test_status_matches() -> None:
    assert status_matches(204, ["2xx"])
    assert not status_matches(302, ["2xx"])
    assert status_matches(302, ["200", "302"])


async def test_redirect_is_not_followed(
    fake: FakeServer, other: FakeServer, client: httpx.AsyncClient
) -> None:
    fake.status, fake.headers = 302, {"Location": f"http://{other.host}/steal"}
    with pytest.raises(PermanentError, match="302"):
        await HttpExecutor(client, [fake.host]).run(step(f"http://{fake.host}/"), context())
    assert len(fake.received) == 1
    assert other.received == []


async def test_redirect_not_followed_even_by_following_client(
    fake: FakeServer, other: FakeServer
) -> None:
    fake.status, fake.headers = 307, {"Location": f"http://{other.host}/steal"}
    async with httpx.AsyncClient(follow_redirects=True) as c:
        with pytest.raises(PermanentError):
            await HttpExecutor(c, [fake.host]).run(step(f"http://{fake.host}/"), context())
    assert other.received == []


async def test_timeout_is_transient(fake: FakeServer, client: httpx.AsyncClient) -> None:
    fake.hang = True
    with pytest.raises(TransientError, match="timed out"):
        await HttpExecutor(client, [fake.host]).run(
            step(f"http://{fake.host}/", timeout=0.2), context()
        )


async def test_connection_refused_is_transient(client: httpx.AsyncClient) -> None:
    port = free_port()
    with pytest.raises(TransientError):
        await HttpExecutor(client, [f"127.0.0.1:{port}"]).run(
            step(f"http://127.0.0.1:{port}/"), context()
        )


@pytest.mark.parametrize("where", ["url", "header", "json"])
async def test_unsafe_value_is_permanent_and_sends_nothing(
    fake: FakeServer, client: httpx.AsyncClient, where: str
) -> None:
    template = "{{ version }}"
    kw: dict[str, Any] = {
        "url": {},
        "header": {"headers": {"X-Version": template}},
        "json": {"json": {"version": template}},
    }[where]
    url = f"http://{fake.host}/" + ("v/" + template if where == "url" else "")
    with pytest.raises(PermanentError, match="not allowed"):
        await HttpExecutor(client, [fake.host]).run(step(url, **kw), context("1; rm -rf /"))
    assert fake.received == []
