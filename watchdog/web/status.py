"""The status page: ``/`` (open and recent windows) and ``/deployments/{id}``.

Read-only, server-rendered, refreshed by a small script polling ``?partial=1``.

Who may look (the routes are exempt from the API's Bearer middleware and check here):

* ``public=True`` (``WATCHDOG_STATUS_PUBLIC``): anyone who can reach the port;
* no token configured at all (loopback only, like the API): anyone;
* otherwise the API token or the read-only ``WATCHDOG_STATUS_TOKEN``, as a Bearer
  header (scripts, curl), or once as ``?token=…`` in a link: the page then sets an
  ``HttpOnly; SameSite=Strict`` cookie and redirects to the same URL without the token,
  so it leaves the address bar and history. Browsers cannot send Bearer headers on
  navigation, hence the cookie. The cookie holds a random session id kept in the store
  with a server-side expiry, revocable (``watchdog/web/status_auth.py``), never
  anything derived from the token. The read-only token opens only these pages: the
  API keeps demanding the API token. A signed-in page has a "Sign out" button
  (``POST /sign-out``: the session ends, the cookie is cleared).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from watchdog.foundation.errors import NotFound
from watchdog.foundation.model import EVALUATING_PHASES, WindowPhase
from watchdog.lifecycle.control import Controller
from watchdog.web.openapi import OPENAPI_PARTS, OpenApiPart
from watchdog.web.status_assets import STATUS_CSS, STATUS_JS
from watchdog.web.status_auth import (
    StatusAuth,
    StatusSessions,
    TooManySignIns,
    add_session_routes,
)
from watchdog.web.status_html import TITLE, index_main, page, window_section
from watchdog.web.status_manual import PlanLookup

COOKIE = "watchdog_status"
OPEN_LIMIT = 10  # open windows shown in full on the front page
RECENT_LIMIT = 20
# Exempt from the Bearer middleware (they authenticate themselves, or hold no data).
SIGN_OUT_PATH = "/sign-out"
STATUS_PATHS = frozenset({"/", "/deployments/{id}", "/status.css", "/status.js", SIGN_OUT_PATH})
_SIGNED_IN = web.RequestKey("watchdog.status_signed_in", bool)  # opened by a session cookie
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_WINDOW_ID = r"{id:[A-Za-z0-9_-]{1,64}}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class StatusContext:
    """What the page handlers need, stored on the app."""

    controller: Controller
    auth: StatusAuth
    sessions: StatusSessions
    clock: Callable[[], float]
    plans: PlanLookup | None = None  # the deployment's rollback plan, for "roll back by hand"


STATUS = web.AppKey("watchdog.status", StatusContext)


def add_status_routes(
    app: web.Application,
    controller: Controller,
    *,
    auth: StatusAuth,
    sessions: StatusSessions,
    clock: Callable[[], float],
    plans: PlanLookup | None = None,
) -> None:
    """Register the page's routes (pass :data:`STATUS_PATHS` as the app's open paths)
    and the API's ``DELETE /api/v1/status/sessions``; ``plans`` finds a deployment's
    rollback plan, shown as commands when a rollback must be done by hand."""
    app[STATUS] = StatusContext(controller, auth, sessions, clock, plans)
    add_session_routes(app, sessions)
    app.router.add_get("/", _guarded(index))
    app.router.add_get(f"/deployments/{_WINDOW_ID}", _guarded(window_page))
    app.router.add_get("/status.css", _asset(STATUS_CSS, "text/css"))
    app.router.add_get("/status.js", _asset(STATUS_JS, "text/javascript"))
    app.router.add_post(SIGN_OUT_PATH, sign_out)
    app.setdefault(OPENAPI_PARTS, []).append(_openapi_part())


def _page(summary: str, media: str, *, guarded: bool, path_id: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": summary, "content": {media: {}}}}
    if guarded:
        responses["401"] = {"description": "no valid token or cookie", "content": {media: {}}}
    if path_id:
        responses["404"] = {"description": "no such window", "content": {media: {}}}
    op: dict[str, Any] = {"summary": summary, "responses": responses, "security": []}
    if path_id:
        op["parameters"] = [
            # The route's own pattern: any other id is the app's JSON 404, not this page.
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            }
        ]
    return {"get": op}


def _openapi_part() -> OpenApiPart:
    """The status page in /openapi.json: HTML for people, with its own auth."""
    return OpenApiPart(
        paths={
            "/": _page("status page: open and recent windows", "text/html", guarded=True),
            "/deployments/{id}": _page(
                "one window's page", "text/html", guarded=True, path_id=True
            ),
            "/status.css": _page("the page's styles", "text/css", guarded=False),
            "/status.js": _page("the page's polling script", "text/javascript", guarded=False),
            SIGN_OUT_PATH: {
                "post": {
                    "summary": "sign out of the status page: the session ends, the cookie "
                    "is cleared, then a redirect to /",
                    "responses": {"303": {"description": "signed out"}},
                    "security": [],
                }
            },
        }
    )


def _asset(text: str, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            text=text, content_type=content_type, headers={"Cache-Control": "max-age=300"}
        )

    return serve


def _guarded(handler: Handler) -> Handler:
    async def check(request: web.Request) -> web.StreamResponse:
        ctx = request.app[STATUS]
        if ctx.auth.open or await _allowed(request, ctx):
            return await handler(request)
        given = request.query.get("token", "")
        token = ctx.auth.matching(given) if given else None
        if token is not None:
            return await _trade_for_cookie(request, ctx, token)
        return _html(401, _denied_main(), terminal=True)

    check.__name__ = handler.__name__
    check.__doc__ = handler.__doc__
    return check


async def _allowed(request: web.Request, ctx: StatusContext) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and ctx.auth.matching(given.strip()) is not None:
        return True
    cookie = request.cookies.get(COOKIE, "")
    request[_SIGNED_IN] = bool(cookie) and await ctx.sessions.valid(cookie, ctx.auth.tokens)
    return bool(request[_SIGNED_IN])


async def _trade_for_cookie(request: web.Request, ctx: StatusContext, token: bytes) -> web.Response:
    try:
        session = await ctx.sessions.issue(token)
    except TooManySignIns as exc:
        wait = {"Retry-After": str(max(1, math.ceil(exc.retry_after - 1e-6)))}
        main = f"<h1>Too many sign-ins</h1><p>{escape(str(exc))}.</p>"
        return _html(429, main, terminal=True, headers=wait)
    # Redirect to the same path without the token, so it leaves the address bar.
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    location = request.path + (f"?{urlencode(rest)}" if rest else "")
    response = web.Response(status=303, headers={"Location": location})
    response.set_cookie(
        COOKIE,
        session,
        max_age=round(ctx.sessions.ttl),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=ctx.auth.secure_cookie,
    )
    return response


def _denied_main() -> str:
    return (
        "<h1>Sign-in needed</h1><p>Open this page once as <code>/?token=…</code> with the "
        "API token or the read-only status token (<code>WATCHDOG_STATUS_TOKEN</code>), "
        "or ask the operator to set <code>WATCHDOG_STATUS_PUBLIC=true</code>.</p>"
    )


async def sign_out(request: web.Request) -> web.Response:
    """``POST /sign-out``: end this browser's session, clear its cookie, back to ``/``.
    (Cross-site, the ``SameSite=Strict`` cookie is not sent: nothing ends.)"""
    cookie = request.cookies.get(COOKIE, "")
    if cookie:
        await request.app[STATUS].sessions.sign_out(cookie)
    response = web.Response(status=303, headers={"Location": "/", "Cache-Control": "no-store"})
    response.del_cookie(COOKIE, path="/")
    return response


def _html(
    status: int,
    main: str,
    *,
    terminal: bool,
    partial: bool = False,
    signed_in: bool = False,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = main if partial else page(TITLE, main, terminal=terminal, signed_in=signed_in)
    headers = (headers or {}) | {
        "Content-Security-Policy": _CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Watchdog-Terminal": str(int(terminal)),
    }
    return web.Response(status=status, text=body, content_type="text/html", headers=headers)


async def index(request: web.Request) -> web.Response:
    """``GET /``: every open window in full, then the recent closed ones."""
    ctx = request.app[STATUS]
    opened = await ctx.controller.list_windows(phases=EVALUATING_PHASES, limit=OPEN_LIMIT)
    closing = {WindowPhase.ROLLING_BACK}
    busy = await ctx.controller.list_windows(phases=closing, limit=OPEN_LIMIT)
    details = await asyncio.gather(*(ctx.controller.detail(w.id) for w in [*busy, *opened]))
    recent = await ctx.controller.list_windows(
        phases=[p for p in WindowPhase if p.terminal], limit=RECENT_LIMIT
    )
    main = index_main(details, recent, ctx.clock(), ctx.plans)
    partial, signed_in = "partial" in request.query, request.get(_SIGNED_IN, False)
    return _html(200, main, terminal=False, partial=partial, signed_in=signed_in)


async def window_page(request: web.Request) -> web.Response:
    """``GET /deployments/{id}``: one window's story (404 page for an unknown id)."""
    ctx = request.app[STATUS]
    try:
        detail = await ctx.controller.detail(request.match_info["id"])
    except NotFound:
        return _html(404, "<h1>No such window</h1>", terminal=True)
    main = window_section(detail, ctx.clock(), link=False, plans=ctx.plans)
    terminal = detail.window.phase.terminal
    partial, signed_in = "partial" in request.query, request.get(_SIGNED_IN, False)
    return _html(200, main, terminal=terminal, partial=partial, signed_in=signed_in)
