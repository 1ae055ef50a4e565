"""A fast fake Prometheus for the scale benchmark: answers ``/api/v1/query`` at once.

It runs an aiohttp server on its own event loop in a background thread (so it can live
in the benchmark's parent process while the watchdog runs in a child) and records the
arrival time of every query. Each answer is an instant vector with one series per
``service="..."`` matcher in the query, value 0.01 (healthy), or one series per known
service for a ``by (service)`` query with no service matcher.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

from aiohttp import web

_SERVICE = re.compile(r'service="([^"]*)"')


class StubPrometheus:
    """Start with :meth:`start`, read :attr:`arrivals` (``(time, query)``), then :meth:`stop`."""

    def __init__(self, services: list[str] | None = None) -> None:
        self.services = services or []
        self.arrivals: list[tuple[float, str]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> StubPrometheus:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def take(self) -> list[tuple[float, str]]:
        """The arrivals so far, clearing them."""
        out, self.arrivals = self.arrivals, []
        return out

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        app.router.add_get("/-/ready", _ok)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _query(self, request: web.Request) -> web.Response:
        arrived = time.time()
        params: Any = request.query if request.method == "GET" else await request.post()
        query = str(params.get("query", ""))
        self.arrivals.append((arrived, query))
        services = _SERVICE.findall(query) or self.services
        result = [{"metric": {"service": s}, "value": [arrived, "0.01"]} for s in services]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return web.json_response(body)


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="Prometheus is Ready.\n")
