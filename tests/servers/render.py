"""A local fake of Render's public API (the parts a rollback uses), in its wire format.

    GET   /v1/services/{serviceId}/deploys            [{"deploy": {...}, "cursor": "..."}]
    GET   /v1/services/{serviceId}/deploys/{deployId} {...deploy}
    POST  /v1/services/{serviceId}/rollback           {"deployId": "dep-..."} → 201 {...deploy}
    PATCH /v1/services/{serviceId}                    {"autoDeploy": "no"} → {...service}

Deploys are newest first with Render's statuses (``live``, ``deactivated``,
``build_failed``, ``update_in_progress``…). A rollback deploy starts
``update_in_progress`` and reaches ``final_status`` after ``polls_to_settle`` GETs of
it; going live deactivates the deploy that was live. Every request is recorded.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from examples.stack import free_port

API_KEY = "rnd_test_key_0123456789"


def deploy(deploy_id: str, status: str, commit: str, trigger: str = "new_commit") -> dict[str, Any]:
    """A deploy object as Render returns it."""
    return {
        "id": deploy_id,
        "commit": {
            "id": commit,
            "message": f"commit {commit}",
            "createdAt": "2026-01-01T00:00:00Z",
        },
        "status": status,
        "trigger": trigger,
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
        "finishedAt": "2026-01-01T00:00:00Z"
        if status not in {"created", "update_in_progress"}
        else None,
    }


@dataclass
class FakeRender:
    """The fake's state; tests change it and read ``requests``."""

    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    deploys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    final_status: str = "live"
    polls_to_settle: int = 2
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before serving
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _polls: dict[str, int] = field(default_factory=dict)

    def add_service(self, service_id: str, *history: tuple[str, str]) -> None:
        """``history`` of (status, commit), newest first."""
        self.services[service_id] = {"id": service_id, "autoDeploy": "yes", "name": service_id}
        self.deploys[service_id] = [
            deploy(f"dep-{service_id}-{i}", status, commit)
            for i, (status, commit) in enumerate(history)
        ]

    def calls(self, method: str) -> list[tuple[str, Any]]:
        return [(path, body) for m, path, body in self.requests if m == method]


FAKE = web.AppKey("fake_render", FakeRender)
BODY = web.RequestKey("body", object)


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    fake: FakeRender = request.app[FAKE]
    body = await request.json() if request.can_read_body else None
    fake.requests.append((request.method, request.path_qs, body))
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        return web.json_response({"id": "unauthorized", "message": "unauthorized"}, status=401)
    if fake.fail_next:
        return web.json_response({"message": "injected"}, status=fake.fail_next.pop(0))
    request[BODY] = body
    return await handler(request)


def _service(request: web.Request) -> tuple[FakeRender, str]:
    fake: FakeRender = request.app[FAKE]
    sid = request.match_info["sid"]
    if sid not in fake.services:
        raise web.HTTPNotFound(
            text='{"message":"service not found"}', content_type="application/json"
        )
    return fake, sid


async def list_deploys(request: web.Request) -> web.Response:
    fake, sid = _service(request)
    limit = int(request.query.get("limit", "20"))
    items = [{"deploy": d, "cursor": f"c-{d['id']}"} for d in fake.deploys[sid][:limit]]
    return web.json_response(items)


async def get_deploy(request: web.Request) -> web.Response:
    fake, sid = _service(request)
    did = request.match_info["did"]
    for d in fake.deploys[sid]:
        if d["id"] == did:
            if d["status"] == "update_in_progress":
                fake._polls[did] = fake._polls.get(did, 0) + 1
                if fake._polls[did] >= fake.polls_to_settle:
                    _settle(fake, sid, d)
            return web.json_response(d)
    return web.json_response({"message": "deploy not found"}, status=404)


def _settle(fake: FakeRender, sid: str, new: dict[str, Any]) -> None:
    if fake.final_status == "live":
        for d in fake.deploys[sid]:
            if d["status"] == "live":
                d["status"] = "deactivated"
    new["status"] = fake.final_status


async def rollback(request: web.Request) -> web.Response:
    fake, sid = _service(request)
    body: Any = request[BODY]
    target = next((d for d in fake.deploys[sid] if d["id"] == (body or {}).get("deployId")), None)
    if target is None:
        return web.json_response({"message": "deployId not found"}, status=400)
    new = deploy(
        f"dep-{sid}-rb{next(fake._ids)}", "update_in_progress", target["commit"]["id"], "rollback"
    )
    fake.deploys[sid].insert(0, new)
    return web.json_response(new, status=201)


async def update_service(request: web.Request) -> web.Response:
    fake, sid = _service(request)
    body: Any = request[BODY] or {}
    if body.get("autoDeploy") not in (None, "yes", "no"):
        return web.json_response({"message": "autoDeploy must be yes or no"}, status=400)
    fake.services[sid].update(body)
    return web.json_response(fake.services[sid])


@contextlib.asynccontextmanager
async def running_fake_render() -> AsyncIterator[FakeRender]:
    """Serve a :class:`FakeRender` on a free loopback port; ``fake.url`` is its /v1."""
    fake = FakeRender()
    app = web.Application(middlewares=[_guard])
    app[FAKE] = fake
    app.router.add_get("/v1/services/{sid}/deploys", list_deploys)
    app.router.add_get("/v1/services/{sid}/deploys/{did}", get_deploy)
    app.router.add_post("/v1/services/{sid}/rollback", rollback)
    app.router.add_patch("/v1/services/{sid}", update_service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()
