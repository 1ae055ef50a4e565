"""Issue 13 item 2 in process: head and body deadlines, keep-alive limits, the cap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watchdog.app import App
from watchdog.settings import Settings
from watchdog.web.connections import FD_RESERVE, ConnectionLimits

pytestmark = pytest.mark.integration

TOKEN = "connections-token-0123456789"
RULES = """\
groups:
  - name: g
    rules:
      - name: up
        source: http
        url: http://127.0.0.1:9/never
        action: notify
"""

Start = Callable[..., Awaitable[App]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    apps: list[App] = []

    async def _start(**overrides: Any) -> App:
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        settings = Settings(
            rules=[rules],
            store_url=SecretStr(f"sqlite:///{tmp_path / f'wd{len(apps)}.db'}"),
            listen_port=0,
            api_token=SecretStr(TOKEN),
            **overrides,
        )
        app = App(settings)
        await app.start(schedule=False)
        apps.append(app)
        return app

    yield _start
    for app in apps:
        await app.stop()


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closed the connection (fails past ``within``)."""
    began = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(4096), timeout=within):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - began


async def healthz(app: App) -> httpx.Response:
    async with httpx.AsyncClient(base_url=app.url, timeout=5) as client:
        return await client.get("/healthz")


async def test_silent_and_half_header_connections_are_closed_at_the_head_deadline(
    start: Start,
) -> None:
    app = await start(http_header_timeout=0.5)
    assert app.port is not None
    silent = await asyncio.open_connection("127.0.0.1", app.port)
    half = await asyncio.open_connection("127.0.0.1", app.port)
    half[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    waited = await asyncio.gather(closed_by_server(silent[0], 5), closed_by_server(half[0], 5))
    assert all(0.3 < w < 3 for w in waited), waited
    assert (await healthz(app)).status_code == 200


async def test_a_body_that_does_not_arrive_in_time_drops_the_connection(start: Start) -> None:
    app = await start(http_body_timeout=0.5)
    assert app.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    writer.write(
        b"POST /api/v1/deployments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"service": "a'
    )
    assert 0.3 < await closed_by_server(reader, 5) < 3
    assert (await healthz(app)).status_code == 200
    assert app.parts is not None and await app.parts.store.list_windows() == []


async def test_keep_alive_connections_serve_a_bounded_number_of_requests(start: Start) -> None:
    app = await start(http_max_keepalive_requests=2)
    async with httpx.AsyncClient(base_url=app.url) as client:
        first, second = [await client.get("/healthz") for _ in range(2)]
    assert first.headers.get("Connection", "keep-alive").lower() == "keep-alive"
    assert second.headers["Connection"].lower() == "close"


async def test_beyond_the_cap_idle_connections_give_way_and_busy_ones_mean_503(
    start: Start,
) -> None:
    app = await start(max_connections=4, http_body_timeout=30)
    assert app.port is not None and app.site is not None and app.site.pool is not None
    idle = [await asyncio.open_connection("127.0.0.1", app.port) for _ in range(4)]
    # A fifth connection evicts the oldest idle one: /healthz is never locked out.
    assert (await healthz(app)).status_code == 200
    await closed_by_server(idle[0][0], 2)
    assert app.site.pool.evicted >= 1
    for _, writer in idle:
        writer.close()
    busy = []
    for _ in range(4):  # each in the middle of a request (its body still coming)
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        writer.write(
            b"POST /api/v1/deployments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            + f"\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
        busy.append((reader, writer))
    deadline = time.monotonic() + 5
    while app.site.pool.waiting_connections or app.site.pool.open_connections < 4:
        assert time.monotonic() < deadline, "the requests never became busy"
        await asyncio.sleep(0.02)
    refused = await healthz(app)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "too many connections" in refused.json()["error"]["message"]
    for _, writer in busy:
        writer.close()
    while app.site.pool.open_connections >= 4:  # the server sees the closes
        assert time.monotonic() < deadline + 5, "busy connections never closed"
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=app.url) as client:
        metrics = (await client.get("/metrics")).text
    assert "watchdog_http_connections_cap 4.0" in metrics
    assert "watchdog_http_connections_refused_total 1.0" in metrics
    assert f"watchdog_http_connections_evicted_total {app.site.pool.evicted:.1f}" in metrics


def test_the_cap_stays_below_the_open_file_limit() -> None:
    limits = ConnectionLimits(max_connections=1000)
    assert limits.cap(1024) == 1024 - FD_RESERVE
    assert limits.cap(65536) == 1000


SIGNING_SECRET = "slack-signing-secret-0123456789abcdef"


def slack_head(length: int) -> bytes:
    """A complete Slack interaction head: fresh timestamp, well-formed (fake) signature."""
    return (
        "POST /slack/interactions HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'ab' * 32}\r\n"
        f"Content-Length: {length}\r\n\r\npayload="
    ).encode()


async def test_a_slack_shaped_flood_cannot_lock_out_health_or_the_api(start: Start) -> None:
    """Issue 25 M2, bounded: 130 sockets (1.3x the cap of 100) each send a complete Slack
    head and one byte of a 4 KiB body, and are re-opened as they are evicted, while
    /healthz and the API are asked 20 times each. Every answer is 200."""
    app = await start(
        max_connections=100, http_body_timeout=60,
        notify={"slack_bot_token": "xoxb-flood-0123456789abcdef",
                "slack_signing_secret": SIGNING_SECRET},
    )  # fmt: skip
    assert app.port is not None and app.site is not None and app.site.pool is not None
    port, stop = app.port, asyncio.Event()

    async def flooder() -> None:
        while not stop.is_set():  # bounded: ends when the checks are done
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(slack_head(4096))
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(reader.read(1), timeout=30)  # held until evicted
            writer.close()

    flood = [asyncio.create_task(flooder()) for _ in range(130)]
    deadline = time.monotonic() + 30
    pool = app.site.pool
    while pool.open_connections < 100 or pool.evicted + pool.refused < 30:  # at the cap
        assert time.monotonic() < deadline, "the flood never reached the cap"
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            answers = [await client.get("/healthz") for _ in range(20)]
            answers += [await client.get("/api/v1/deployments", headers=headers) for _ in range(20)]
    finally:
        stop.set()
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
    assert [a.status_code for a in answers] == [200] * 40


@pytest.mark.parametrize("share", [0.5, 1.0])
async def test_one_address_flooding_unauthenticated_bodies_keeps_to_its_share(
    start: Start, share: float
) -> None:
    """Issue 25 item 3: a per-address share of the cap for unauthenticated requests.
    Another address (127.0.0.3) has 4 Slack-shaped bodies on their way; one address
    (127.0.0.2) then opens 30 more, 3x the cap of 10. With the default ``client_share``
    (0.5) the flooder only ever evicts its own and the 4 bodies complete and are
    answered; with no share (1.0) the flood evicts them, the oldest, first."""
    app = await start(
        max_connections=10, http_body_timeout=60, http_header_timeout=60,
        notify={"slack_bot_token": "xoxb-flood-0123456789abcdef",
                "slack_signing_secret": SIGNING_SECRET},
    )  # fmt: skip
    assert app.port is not None and app.site is not None and app.site.pool is not None
    pool = app.site.pool
    pool.limits = replace(pool.limits, client_share=share)

    async def from_(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", app.port, local_addr=(address, 0)
        )
        writer.write(slack_head(64))
        return reader, writer

    async def settled(opened: int) -> None:
        deadline = time.monotonic() + 10
        while pool.open_connections + pool.evicted + pool.refused < opened:
            assert time.monotonic() < deadline, "the server never saw every connection"
            await asyncio.sleep(0.02)

    victims = [await from_("127.0.0.3") for _ in range(4)]
    await settled(4)
    flood = [await from_("127.0.0.2") for _ in range(30)]
    await settled(34)
    assert pool.refused == 0 and pool.evicted == 24 and pool.open_connections == 10

    answers = []
    for reader, writer in victims:
        with contextlib.suppress(ConnectionError):
            writer.write(b"x" * (64 - len("payload=")))
        with contextlib.suppress(ConnectionError):
            answers.append((await asyncio.wait_for(reader.readline(), timeout=10)).strip())
    for _, writer in victims + flood:
        writer.close()
    if share == 0.5:  # served to the end: Slack's signature check answers
        assert answers == [b"HTTP/1.1 401 Unauthorized"] * 4
    else:  # the flood pushed them out before their bodies were in
        assert answers == [b""] * len(answers)
