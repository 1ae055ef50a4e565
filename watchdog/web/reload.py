"""``POST /-/reload``: re-read the rule files (Bearer-authenticated like the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from watchdog.lifecycle.reload import ReloadResult
from watchdog.web.openapi import OPENAPI_PARTS, OpenApiPart, _errors

RELOAD_PATH = "/-/reload"

Reload = Callable[[], Awaitable[ReloadResult]]


def add_reload_routes(app: web.Application, reload: Reload) -> None:
    """Add the route and its OpenAPI entry."""

    async def handle(request: web.Request) -> web.Response:
        result = await reload()
        # 422: the files are wrong, the request was fine; the old rules stay in force.
        return web.json_response(asdict(result), status=200 if result.ok else 422)

    app.router.add_post(RELOAD_PATH, handle)
    app.setdefault(OPENAPI_PARTS, []).append(_openapi_part())


def _result_schema() -> dict[str, Any]:
    names = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "required": ["ok", "rules", "errors", "added", "changed", "removed"],
        "properties": {
            "ok": {"type": "boolean"},
            "rules": {"type": "integer"},
            "errors": names,
            "added": names,
            "changed": names,
            "removed": names,
        },
    }


def _openapi_part() -> OpenApiPart:
    content = {"application/json": {"schema": _result_schema()}}
    op = {
        "tags": ["operations"],
        "operationId": "reloadRules",
        "summary": "Re-read the rule files; swap them in only if every file is valid.",
        "responses": {
            "200": {"description": "Reloaded.", "content": content},
            "422": {
                "description": "A rule file is invalid (errors give file:line); the rules "
                "in force are unchanged.",
                "content": content,
            },
            **_errors(401),
        },
    }
    return OpenApiPart(paths={RELOAD_PATH: {"post": op}})
