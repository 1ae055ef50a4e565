"""A local HTTP endpoint standing in for a deploy system's rollback API; it counts calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class RollbackTarget:
    """Where rollback plans point; ``calls`` holds each request's JSON body and headers."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.calls.append({"body": body, "headers": dict(request.headers)})
        return web.json_response({"ok": True})


@pytest.fixture
async def rollback_target() -> AsyncIterator[RollbackTarget]:
    """A running target on a free loopback port."""
    target = RollbackTarget()
    app = web.Application()
    app.router.add_post("/rollback", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    target.url = f"http://{host}:{port}/rollback"
    yield target
    await runner.cleanup()
