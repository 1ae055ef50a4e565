"""The status page: ``/`` (open and recent windows) and ``/deployments/{id}``.

Read-only, server-rendered, refreshed by a small script polling ``?partial=1``.

Who may look (the routes are exempt from the API's Bearer middleware and check here):

* ``public=True`` (``WATCHDOG_STATUS_PUBLIC``): anyone who can reach the port;
* no token configured at all (loopback only, like the API): anyone;
* otherwise the API token or the read-only ``WATCHDOG_STATUS_TOKEN``, as a Bearer
  header (scripts, curl), or once as ``?token=…`` in a link: the page then sets an
  ``HttpOnly; SameSite=Strict`` cookie and redirects to the same URL without the token,
  so it leaves the address bar and history. Browsers cannot send Bearer headers on
  navigation, hence the cookie. The cookie holds an HMAC derived from the token, never
  the token itself, and stops working when the token changes. The read-only token
  opens only these pages: the API keeps demanding the API token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from watchdog.errors import NotFound
from watchdog.model import EVALUATING_PHASES, WindowPhase
from watchdog.web.control import Controller
from watchdog.web.openapi import OPENAPI_PARTS, OpenApiPart
from watchdog.web.status_assets import STATUS_CSS, STATUS_JS
from watchdog.web.status_html import TITLE, index_main, page, window_section

COOKIE = "watchdog_status"
COOKIE_MAX_AGE = 12 * 3600
OPEN_LIMIT = 10  # open windows shown in full on the front page
RECENT_LIMIT = 20
# Exempt from the Bearer middleware (they authenticate themselves, or hold no data).
STATUS_PATHS = frozenset({"/", "/deployments/{id}", "/status.css", "/status.js"})
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_WINDOW_ID = r"{id:[A-Za-z0-9_-]{1,64}}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class StatusAuth:
    """Which credentials open the page."""

    tokens: tuple[bytes, ...]  # the API token and the read-only status token, when set
    public: bool = False
    secure_cookie: bool = False  # set when the page is served over https

    @property
    def open(self) -> bool:
        """True when no credential is needed."""
        return self.public or not self.tokens

    def cookie_for(self, token: bytes) -> str:
        """The cookie value standing for ``token`` (an HMAC of it, not the token)."""
        return hmac.new(token, b"watchdog status page v1", hashlib.sha256).hexdigest()

    def matching(self, given: str) -> bytes | None:
        """The configured token equal to ``given`` (constant-time), or None."""
        raw = given.encode("utf-8", "replace")
        return next((t for t in self.tokens if hmac.compare_digest(raw, t)), None)

    def cookie_ok(self, value: str) -> bool:
        """True when the cookie was issued for a configured token."""
        return any(hmac.compare_digest(value, self.cookie_for(t)) for t in self.tokens)


@dataclass(frozen=True)
class StatusContext:
    """What the page handlers need, stored on the app."""

    controller: Controller
    auth: StatusAuth
    clock: Callable[[], float]


STATUS = web.AppKey("watchdog.status", StatusContext)


def add_status_routes(
    app: web.Application,
    controller: Controller,
    *,
    auth: StatusAuth,
    clock: Callable[[], float],
) -> None:
    """Register the page's routes (pass :data:`STATUS_PATHS` as the app's open paths)."""
    app[STATUS] = StatusContext(controller, auth, clock)
    app.router.add_get("/", _guarded(index))
    app.router.add_get(f"/deployments/{_WINDOW_ID}", _guarded(window_page))
    app.router.add_get("/status.css", _asset(STATUS_CSS, "text/css"))
    app.router.add_get("/status.js", _asset(STATUS_JS, "text/javascript"))
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
        auth = request.app[STATUS].auth
        if auth.open or _allowed(request, auth):
            return await handler(request)
        token = auth.matching(request.query.get("token", "")) if "token" in request.query else None
        if token is not None:
            return _trade_for_cookie(request, auth, token)
        return _html(401, _denied_main(), terminal=True)

    check.__name__ = handler.__name__
    check.__doc__ = handler.__doc__
    return check


def _allowed(request: web.Request, auth: StatusAuth) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and auth.matching(given.strip()) is not None:
        return True
    return auth.cookie_ok(request.cookies.get(COOKIE, ""))


def _trade_for_cookie(request: web.Request, auth: StatusAuth, token: bytes) -> web.Response:
    # Redirect to the same path without the token, so it leaves the address bar.
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    location = request.path + (f"?{urlencode(rest)}" if rest else "")
    response = web.Response(status=303, headers={"Location": location})
    response.set_cookie(
        COOKIE,
        auth.cookie_for(token),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=auth.secure_cookie,
    )
    return response


def _denied_main() -> str:
    return (
        "<h1>Sign-in needed</h1><p>Open this page once as <code>/?token=…</code> with the "
        "API token or the read-only status token (<code>WATCHDOG_STATUS_TOKEN</code>), "
        "or ask the operator to set <code>WATCHDOG_STATUS_PUBLIC=true</code>.</p>"
    )


def _html(status: int, main: str, *, terminal: bool, partial: bool = False) -> web.Response:
    body = main if partial else page(TITLE, main, terminal=terminal)
    headers = {
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
    main = index_main(details, recent, ctx.clock())
    return _html(200, main, terminal=False, partial="partial" in request.query)


async def window_page(request: web.Request) -> web.Response:
    """``GET /deployments/{id}``: one window's story (404 page for an unknown id)."""
    ctx = request.app[STATUS]
    try:
        detail = await ctx.controller.detail(request.match_info["id"])
    except NotFound:
        return _html(404, "<h1>No such window</h1>", terminal=True)
    main = window_section(detail, ctx.clock(), link=False)
    terminal = detail.window.phase.terminal
    return _html(200, main, terminal=terminal, partial="partial" in request.query)
