"""The fault harness of issue 24: three `watchdog serve` replicas on a real PostgreSQL
and a real Redis, each reaching them through its own breakable TCP link, a target whose
rollback command and HTTP endpoint count their calls, a webhook and PagerDuty."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiohttp import web

from examples.stack import WatchdogServer
from tests.e2e.test_ha import api, metric
from tests.rules import rules
from tests.servers.pagerduty import FakePagerDuty
from tests.world import config_file, paging

TERMINAL = {"rolled_back", "rollback_failed"}


class Link:
    """A TCP proxy a test can break: ``silence`` (connections stay open, nothing passes:
    a dead link no RST reports) or ``cut`` (every connection reset, new ones refused:
    the server is down). ``heal`` restores it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.silent = False
        self.down = False
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def via(self, url: str, port: int) -> str:
        """``url`` with its port replaced by this link's."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def silence(self) -> None:
        self.silent = True

    def cut(self) -> None:
        self.down = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def heal(self) -> None:
        self.silent = self.down = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, up_w}
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        self._open -= {writer, up_w}

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                if self.silent:
                    continue  # swallowed
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(Exception):
            dst.close()


@dataclass
class Target:
    """/health/{service}; /rollback counting Idempotency-Keys (``on_rollback`` runs first)."""

    url: str = ""
    failing: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    on_rollback: Callable[[], Awaitable[None]] | None = None

    async def health(self, request: web.Request) -> web.Response:
        status = 500 if request.match_info["service"] in self.failing else 200
        return web.json_response({}, status=status)

    async def rollback(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        if self.on_rollback is not None:
            await self.on_rollback()
        return web.json_response({})


@dataclass
class Webhook:
    url: str = ""
    delay: float = 0.0  # a slow receiver
    events: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.delay)
        self.events.append(body["event"])
        return web.json_response({})

    def duplicates(self) -> list[tuple[str, int]]:
        counts = Counter((e["window_id"], e["seq"]) for e in self.events)
        return [k for k, n in counts.items() if n > 1]


def command(runs: Path, release: Path) -> list[str]:
    """A rollback command that records each run, then waits for ``release`` (bounded)."""
    script = (
        f'echo run >> "{runs}"; i=0; while [ ! -e "{release}" ] && [ $i -lt 600 ];'
        " do sleep 0.05; i=$((i+1)); done; echo rolled back"
    )
    return ["/bin/sh", "-c", script]


def write_config(
    home: Path, target: Target, hook: Webhook, pd: FakePagerDuty, steps: list[dict[str, Any]]
) -> Path:
    health = f"{target.url}/health/{{{{ service }}}}"
    file = (
        rules(home)
        .group("g", "300ms")
        .http("health", health, action="rollback", severity="critical")
    )
    return config_file(
        home, file, plans={"p": {"steps": steps}}, default_plan="p",
        http_allowed_hosts=["127.0.0.1"], leader_lease="1s", tick="100ms", confirm_for="0",
        notify=paging(pd.url, webhook_url=hook.url),
    )  # fmt: skip


async def leaders(replicas: list[WatchdogServer]) -> list[WatchdogServer]:
    return [r for r in replicas if await metric(r, "watchdog_leader") == 1]


async def open_window(via: WatchdogServer, service: str, window: str = "10m") -> dict[str, Any]:
    body = {"service": service, "version": "v2", "previous_version": "v1", "window": window}
    response = await api(via, "POST", "/api/v1/deployments", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def detail(via: WatchdogServer, window_id: str) -> dict[str, Any]:
    return dict((await api(via, "GET", f"/api/v1/deployments/{window_id}")).json())


async def ended(via: WatchdogServer, window_id: str) -> dict[str, Any] | None:
    found = await detail(via, window_id)
    return found if found["window"]["phase"] in TERMINAL else None


async def readyz(server: WatchdogServer) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=2) as client:
        response = await client.get(f"{server.url}/readyz")
    return response.status_code, response.text


async def outbox_drained(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
    finally:
        await conn.close()
    return bool(pending == 0)


def triggers(pd: FakePagerDuty, window_id: str) -> int:
    key = f"watchdog-{window_id}"
    return sum(1 for e in pd.events if e["event_action"] == "trigger" and e["dedup_key"] == key)
