"""REST routes under ``/api/v1``: open windows for deployments, inspect them, act on them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from watchdog.foundation.errors import Queued
from watchdog.foundation.model import Deployment, Window
from watchdog.lifecycle.control import Controller
from watchdog.web.schemas import (
    ActionIn,
    ApiError,
    DeploymentIn,
    ErrorDetail,
    ListQuery,
)
from watchdog.web.window_schemas import EventOut, RuleOut, WindowDetailOut, WindowListOut, WindowOut

PREFIX = "/api/v1/deployments"
WINDOW_ID = r"{id:[A-Za-z0-9_-]{1,64}}"
ACTIONS = ("hold", "resume", "rollback", "approve", "abort")
API_ACTOR = "api"

ActionFn = Callable[..., Awaitable[Window]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ApiContext:
    """What the API handlers need, stored on the app under :data:`API`."""

    controller: Controller
    base_url: str
    clock: Callable[[], float]

    def window_out(self, window: Window) -> WindowOut:
        """Render a window for the wire."""
        return WindowOut.of(window, base_url=self.base_url, now=self.clock())


API = web.AppKey("watchdog.api", ApiContext)


def add_api_routes(
    app: web.Application,
    controller: Controller,
    *,
    base_url: str,
    clock: Callable[[], float],
) -> None:
    """Register the ``/api/v1`` routes on ``app``."""
    app[API] = ApiContext(controller=controller, base_url=base_url.rstrip("/"), clock=clock)
    app.router.add_post(PREFIX, create_deployment)
    app.router.add_get(PREFIX, list_deployments)
    app.router.add_get(f"{PREFIX}/{WINDOW_ID}", get_deployment)
    for name in ACTIONS:
        app.router.add_post(f"{PREFIX}/{WINDOW_ID}/{name}", _action_handler(name))


async def create_deployment(request: web.Request) -> web.Response:
    """``POST /api/v1/deployments``: open a watch window (201 with ``Location``)."""
    ctx = request.app[API]
    body = DeploymentIn.model_validate(await read_json(request, required=True))
    deployment = Deployment(
        service=body.service,
        environment=body.environment,
        version=body.version,
        previous_version=body.previous_version,
        labels=body.labels,
        plan=body.plan,
    )
    window = await ctx.controller.open_window(
        deployment,
        window_seconds=body.window,
        actor=API_ACTOR,
        shadow=body.shadow,
        confirm_for=body.confirm_for,
        force=body.force,
    )
    headers = {"Location": f"{PREFIX}/{window.id}"}
    return json_model(ctx.window_out(window), status=201, headers=headers)


async def list_deployments(request: web.Request) -> web.Response:
    """``GET /api/v1/deployments``: windows, newest first, filtered."""
    ctx = request.app[API]
    query = parse_list_query(request.query)
    windows = await ctx.controller.list_windows(
        service=query.service,
        environment=query.environment,
        phases=query.phase,
        limit=query.limit,
    )
    return json_model(WindowListOut(windows=[ctx.window_out(w) for w in windows]))


async def get_deployment(request: web.Request) -> web.Response:
    """``GET /api/v1/deployments/{id}``: the window with its rules and journal."""
    ctx = request.app[API]
    detail = await ctx.controller.detail(request.match_info["id"])
    out = WindowDetailOut(
        window=ctx.window_out(detail.window),
        rules=[RuleOut.of(r, detail.points.get(r.name, ())) for r in detail.rules],
        events=[EventOut.of(e) for e in detail.events],
    )
    return json_model(out)


def _action_handler(name: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        ctx = request.app[API]
        body = ActionIn.model_validate(await read_json(request, required=False))
        act = _actions(ctx.controller)[name]
        try:
            window = await act(
                request.match_info["id"], actor=body.journal_actor(API_ACTOR), reason=body.reason
            )
        except Queued as queued:  # accepted for the leader: 202, and what will happen
            assert isinstance(queued.window, Window)
            out = json_model(ctx.window_out(queued.window), status=202)
            out.headers["Watchdog-Queued"] = str(queued)
            return out
        return json_model(ctx.window_out(window))

    handle.__name__ = f"{name}_deployment"
    handle.__doc__ = f"``POST /api/v1/deployments/{{id}}/{name}``."
    return handle


def _actions(controller: Controller) -> dict[str, ActionFn]:
    return {
        "hold": controller.hold,
        "resume": controller.resume,
        "rollback": controller.rollback,
        "approve": controller.approve,
        "abort": controller.abort,
    }


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """Validate the list filters; ``phase`` may repeat or be comma-separated."""
    getall = getattr(query, "getall", None)
    data: dict[str, object] = {}
    for key in dict.fromkeys(query):
        values: list[str] = getall(key) if getall is not None else [query[key]]
        if key == "phase":
            data[key] = [p.strip() for v in values for p in v.split(",")]
        elif len(values) > 1:
            problem = ErrorDetail(field=key, message="given more than once", type="duplicate")
            raise ApiError(422, f"{key}: {problem.message}", field=key, details=[problem])
        else:
            data[key] = values[0]
    return ListQuery.model_validate(data)


async def read_json(request: web.Request, *, required: bool) -> object:
    """The request's JSON body (``{}`` when there is none and none is required).

    415 unless the content type is ``application/json``; 413 past the size limit
    (aiohttp's ``client_max_size``); 400 for bytes that are not UTF-8 JSON.
    """
    raw = await request.read() if _has_body(request) else b""
    if not raw:
        if required:
            raise ApiError(400, "a JSON object body is required")
        return {}
    return parse_json(raw)


def _has_body(request: web.Request) -> bool:
    if not request.body_exists:
        return False
    if request.content_type != "application/json":
        raise ApiError(
            415, f"content type must be application/json, not {request.content_type[:80]}"
        )
    return True


def parse_json(raw: bytes) -> object:
    """Strict JSON: UTF-8 only, no NaN/Infinity, bounded nesting (400 otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {str(exc)[:200]}") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def json_model(
    model: BaseModel, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Serialise a response model (NaN and infinities become ``null``)."""
    return web.json_response(text=model.model_dump_json(), status=status, headers=headers)
