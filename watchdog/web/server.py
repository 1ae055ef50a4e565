"""The aiohttp application: JSON errors, Bearer auth, health, readiness, metrics, OpenAPI.

Middlewares, outermost first:

0. ``deadlines`` (``deadlines.py``) tells the connection's guard a request's head
   arrived and holds its body to the body deadline.
1. ``errors`` turns every failure into ``{"error": {...}}`` JSON: aiohttp's own
   (404, 405, 413), :class:`ApiError` raised by handlers, pydantic validation (422),
   ``NotFound`` (404), ``Conflict`` (409), ``Overloaded`` (429), ``TransientError`` (503),
   ``PermanentError`` (422); anything else is logged and answered 500 without details.
2. ``body_limit`` holds each route to its body size limit: ``max_body_bytes``, or
   the larger one a route was given in ``body_limits`` (the Alertmanager receiver).
3. ``auth`` demands ``Authorization: Bearer <token>`` everywhere except the open paths.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from watchdog.foundation.errors import (
    Conflict,
    NotFound,
    Overloaded,
    PermanentError,
    Refused,
    TransientError,
)
from watchdog.lifecycle.control import Controller
from watchdog.web.api import add_api_routes
from watchdog.web.deadlines import authenticated, deadlines_middleware
from watchdog.web.openapi import OPENAPI_PARTS, OpenApiPart, build_openapi
from watchdog.web.schemas import ApiError, ErrorBody, ErrorOut, StatusOut

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALWAYS_OPEN = frozenset({"/healthz", "/readyz", "/metrics"})
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")

log = structlog.get_logger("watchdog.web")


@dataclass(frozen=True)
class ServerConfig:
    """What the middlewares and operational routes need, stored on the app."""

    api_token: bytes | None
    open_paths: frozenset[str]
    max_body_bytes: int
    registry: CollectorRegistry
    ready: Callable[[], Awaitable[bool | str]]  # a str: not ready, and why
    body_limits: Mapping[str, int] = field(default_factory=dict)  # path -> larger limit

    def body_limit(self, path: str) -> int:
        """The body size limit of the route at ``path``."""
        return self.body_limits.get(path, self.max_body_bytes)


SERVER_CONFIG = web.AppKey("watchdog.server_config", ServerConfig)
OPENAPI = web.AppKey("watchdog.openapi", dict)


def build_web_app(
    controller: Controller,
    *,
    api_token: str | None,
    base_url: str,
    max_body_bytes: int,
    registry: CollectorRegistry,
    ready: Callable[[], Awaitable[bool | str]],
    extra_routes: Callable[[web.Application], None] | None = None,
    open_paths: Collection[str] = (),
    body_limits: Mapping[str, int] | None = None,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the HTTP application around ``controller``.

    ``api_token=None`` disables auth (Settings only allow that on loopback).
    ``open_paths`` are paths (or route patterns such as ``/deployments/{id}``) exempt
    from Bearer auth because they authenticate themselves (e.g. Slack's signed
    requests, the status page); ``body_limits`` gives exact paths a body limit other
    than ``max_body_bytes``; ``clock`` is used for ``seconds_left``.
    """
    limits = dict(body_limits or {})
    app = web.Application(
        client_max_size=max([max_body_bytes, *limits.values()]),
        middlewares=[
            deadlines_middleware,
            errors_middleware,
            body_limit_middleware,
            auth_middleware,
        ],
    )
    app[SERVER_CONFIG] = ServerConfig(
        api_token=api_token.encode() if api_token is not None else None,
        open_paths=ALWAYS_OPEN | frozenset(open_paths),
        max_body_bytes=max_body_bytes,
        registry=registry,
        ready=ready,
        body_limits=limits,
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    add_api_routes(app, controller, base_url=base_url, clock=clock)
    if extra_routes is not None:
        extra_routes(app)
    parts: list[OpenApiPart] = app.get(OPENAPI_PARTS, [])
    app[OPENAPI] = build_openapi(parts=parts)
    return app


def error_response(body: ErrorBody, headers: dict[str, str] | None = None) -> web.Response:
    """Render the error envelope."""
    return web.json_response(
        text=ErrorOut(error=body).model_dump_json(exclude_none=True),
        status=body.status,
        headers=headers,
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with JSON; log (only) the unexpected ones."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc)
    except Exception as exc:
        error = translate(exc) or _client_gone(request, exc)
        if error is None:
            log.exception("unhandled error", method=request.method, path=request.path)
            error = ApiError(500, "internal error: see the watchdog's log")
        return error_response(error.body, error.headers)


def translate(exc: Exception) -> ApiError | None:
    """The API error a deliberate exception stands for (``None``: a bug, answer 500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError.from_validation(exc)
    if isinstance(exc, NotFound):
        return ApiError(404, str(exc) or "not found")
    if isinstance(exc, Conflict):
        return ApiError(409, str(exc) or "conflict")
    if isinstance(exc, Overloaded):
        return ApiError(429, str(exc) or "too many requests")
    if isinstance(exc, TransientError):
        return _unavailable(exc)
    if isinstance(exc, Refused):
        return ApiError(422, str(exc), field=exc.field)
    if isinstance(exc, PermanentError):
        return ApiError(422, str(exc) or "request cannot be carried out")
    return None


def _client_gone(request: web.Request, exc: Exception) -> ApiError | None:
    # The body deadline (connections.py) dropped this client mid-read: nothing to log,
    # and nobody left to read the answer.
    transport = request.transport
    if isinstance(exc, ConnectionResetError) and (transport is None or transport.is_closing()):
        return ApiError(408, "request body not received in time")
    return None


def _unavailable(exc: TransientError) -> ApiError:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return ApiError(503, str(exc) or "temporarily unavailable", headers=headers)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    message = exc.reason
    if exc.status == 413:
        limit = request.app[SERVER_CONFIG].body_limit(request.path)
        message = f"request body is larger than {limit} bytes"
    elif exc.status == 404:
        message = f"no route {request.path[:200]}"
    elif exc.status == 405:
        message = f"method {request.method[:20]} is not allowed on {request.path[:200]}"
    headers = {k: v for k in _KEPT_HEADERS if (v := exc.headers.get(k)) is not None}
    return error_response(ErrorBody(status=exc.status, message=message), headers)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold the request to its route's body limit (the app's is the largest of them)."""
    limit = request.app[SERVER_CONFIG].body_limit(request.path)
    size = request.content_length
    if size is not None and size > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
    if limit == request.client_max_size:
        return await handler(request)
    return await handler(request.clone(client_max_size=limit))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Demand the Bearer token, compared in constant time."""
    config = request.app[SERVER_CONFIG]
    if config.api_token is None or _is_open(request, config.open_paths):
        return await handler(request)
    if not _token_matches(request.headers.get("Authorization", ""), config.api_token):
        raise ApiError(
            401,
            "missing or wrong bearer token: send `Authorization: Bearer <token>` with the "
            "server's WATCHDOG_API_TOKEN (the watchdog CLI reads it from WATCHDOG_API_TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="watchdog"'},
        )
    authenticated(request)  # its slot is no longer evictable while its body comes
    return await handler(request)


def _is_open(request: web.Request, open_paths: frozenset[str]) -> bool:
    # A dynamic route is exempt by its pattern, e.g. "/deployments/{id}" (status page).
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    return request.path in open_paths or canonical in open_paths


def _token_matches(header: str, expected: bytes) -> bool:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        given = token.strip().encode("utf-8")
    except UnicodeEncodeError:
        return False
    # A bare "Bearer" never passes, whatever was configured (issue 13, item 1).
    return bool(given) and bool(expected) and hmac.compare_digest(given, expected)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return _json(StatusOut(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when the service can do its job, else 503 (with why, if known)."""
    try:
        ok = await request.app[SERVER_CONFIG].ready()
    except Exception:
        log.exception("readiness check failed")
        ok = False
    if ok is not True:
        raise ApiError(503, f"not ready: {ok}" if isinstance(ok, str) else "not ready")
    return _json(StatusOut(status="ready"))


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition of the service's registry."""
    body = generate_latest(request.app[SERVER_CONFIG].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document describing this API."""
    return web.json_response(request.app[OPENAPI])


def _json(model: Any, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)
