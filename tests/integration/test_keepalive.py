"""The lean keep-alive transport against a real HTTP server (aiohttp), through the edge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from watchdog.foundation.errors import TransientError
from watchdog.plumbing import httpedge
from watchdog.plumbing.keepalive import KeepAliveTransport

pytestmark = pytest.mark.integration


@dataclass
class Server:
    url: str
    peers: list[object] = field(default_factory=list)  # the client port of each request


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server("")

    async def plain(request: web.Request) -> web.Response:
        srv.peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        return web.json_response({"q": request.query.get("q")})

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"parts": [', b"1, 2", b", 3]}"):
            await response.write(part)
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        srv.peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        return web.Response(body=b"bye", headers={"Connection": "close"})

    app = web.Application()
    app.router.add_get("/plain", plain)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/close", closing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    srv.url = f"http://{host}:{port}"
    yield srv
    await runner.cleanup()


def refused(_: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("the fallback was asked")


async def get(client: httpx.AsyncClient, url: str) -> httpedge.Answer:
    return await httpedge.fetch(client, "GET", url, what="Prometheus", timeout=5, max_bytes=1000)


async def test_requests_reuse_one_connection_and_keep_their_query(server: Server) -> None:
    transport = KeepAliveTransport([server.url], httpx.MockTransport(refused))
    async with httpx.AsyncClient(transport=transport) as client:
        answers = [await get(client, f"{server.url}/plain?q=a%20b{i}") for i in range(3)]
    assert [json.loads(a.body) for a in answers] == [{"q": f"a b{i}"} for i in range(3)]
    assert len(set(server.peers)) == 1  # one TCP connection for the three


async def test_a_chunked_answer_is_read_whole(server: Server) -> None:
    transport = KeepAliveTransport([server.url], httpx.MockTransport(refused))
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await get(client, f"{server.url}/chunked")
        again = await get(client, f"{server.url}/plain?q=x")
    assert json.loads(answer.body) == {"parts": [1, 2, 3]}
    assert json.loads(again.body) == {"q": "x"}


async def test_a_connection_the_server_closes_is_not_reused(server: Server) -> None:
    transport = KeepAliveTransport([server.url], httpx.MockTransport(refused))
    async with httpx.AsyncClient(transport=transport) as client:
        first = await get(client, f"{server.url}/close")
        second = await get(client, f"{server.url}/close")
    assert (first.body, second.body) == (b"bye", b"bye")
    assert len(set(server.peers)) == 2


async def test_other_origins_go_to_the_fallback(server: Server) -> None:
    seen: list[str] = []

    def fallback(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=b"ok")

    transport = KeepAliveTransport([server.url], httpx.MockTransport(fallback))
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await get(client, "http://slack.invalid/api/chat.postMessage")
    assert answer.body == b"ok" and seen == ["http://slack.invalid/api/chat.postMessage"]


async def test_a_refused_connection_is_a_transient_error_naming_host_and_port() -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    transport = KeepAliveTransport([url], httpx.MockTransport(refused))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(TransientError, match=r"127\.0\.0\.1:9: connection refused"):
            await get(client, f"{url}/api/v1/query")
