"""The rollback target and the notification webhook of the stack suite, in one local
server: it counts what the watchdog calls, and a rollback restores the service (as
rolling back to the previous version would) through ``heal``, ``ROLLBACK_SECONDS`` after
the call: the old version takes a while to serve again, and meanwhile the fault goes on
(a redeploy 30 s later must not be judged on it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ROLLBACK_SECONDS = 10.0


@dataclass
class Recorder:
    """Every rollback call and notification, with the monotonic time it arrived."""

    heal: Callable[[str], None]
    url: str = ""
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    _healing: set[asyncio.Task[None]] = field(default_factory=set)

    async def _rollback(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        self.rollbacks.append({"at": time.monotonic(), "key": key, "body": body})
        task = asyncio.create_task(self._heal_later(str(body.get("service"))))
        self._healing.add(task)
        task.add_done_callback(self._healing.discard)
        return web.json_response({"ok": True})

    async def _heal_later(self, service: str) -> None:
        await asyncio.sleep(ROLLBACK_SECONDS)  # the previous version coming up
        await asyncio.to_thread(self.heal, service)

    async def _notify(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.notifications.append({"at": time.monotonic(), **payload})
        return web.json_response({"ok": True})

    def rollback_calls(self, window_id: str) -> list[dict[str, Any]]:
        return [c for c in self.rollbacks if c["key"].startswith(window_id)]

    def told(self, window_id: str, kind: str, rule: str | None = None) -> list[dict[str, Any]]:
        """Notifications of ``kind`` (and ``rule``) for the window."""
        return [
            n
            for n in self.notifications
            if n["window"]["id"] == window_id
            and n["event"]["kind"] == kind
            and (rule is None or n["event"]["rule"] == rule)
        ]

    def severe(self, window_id: str) -> list[dict[str, Any]]:
        """Notifications of severity warning or above for the window."""
        return [
            n
            for n in self.notifications
            if n["window"]["id"] == window_id and n["severity"] in {"warning", "critical"}
        ]


@asynccontextmanager
async def recorder(heal: Callable[[str], None]) -> AsyncIterator[Recorder]:
    rec = Recorder(heal)
    app = web.Application()
    app.router.add_post("/rollback", rec._rollback)
    app.router.add_post("/notify", rec._notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        for task in list(rec._healing):
            task.cancel()
        await runner.cleanup()
