"""A local fake of Grafana's annotations API (``POST /api/annotations``).

Checks the service-account Bearer token (401 ``{"message": "Unauthorized"}``), that
``time`` (and ``timeEnd``) are integer epoch milliseconds and ``tags`` a list of
strings (400 ``{"message": "bad request data"}``), and answers 200
``{"message": "Annotation added", "id": N}`` as Grafana does. ``fail_next`` scripts
answers (e.g. 503) before the real ones, to show retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve


@dataclass
class FakeGrafana:
    """Stored annotations and every request."""

    token: str
    annotations: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_next: list[int] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/api/annotations", self._add)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _add(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.fail_next:
            return web.json_response({"message": "unavailable"}, status=self.fail_next.pop(0))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        body = await request.json()
        ok = isinstance(body.get("time"), int) and isinstance(body.get("tags", []), list)
        ok = ok and all(isinstance(t, str) for t in body.get("tags", []))
        ok = ok and isinstance(body.get("timeEnd", 0), int) and isinstance(body.get("text"), str)
        if not ok:
            return web.json_response({"message": "bad request data"}, status=400)
        self.annotations.append(body)
        return web.json_response({"message": "Annotation added", "id": len(self.annotations)})
