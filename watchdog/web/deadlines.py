"""The request side of connection hygiene (``connections.py``): the middleware telling a
connection's :class:`~watchdog.web.connections.Guard` that a request's head came, that
its body is in (or that it authenticated), and holding the body to its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from watchdog.web.connections import Guard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guard_of(request: web.Request) -> Guard | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, Guard) else None


def authenticated(request: web.Request) -> None:
    """The request proved who sent it before its body is in (a valid token): it is
    served from now on, no longer evictable."""
    guard = _guard_of(request)
    if guard is not None:
        guard.body_received()


def _body_overdue(guard: Guard, request: web.Request) -> None:
    if not request.content.is_eof():  # the body has not fully arrived
        guard.abort()


@web.middleware
async def deadlines_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection's guard a request came; hold its body to the deadline."""
    guard = _guard_of(request)
    if guard is None:  # served without a ConnectionPool (tests' plain runners)
        return await handler(request)
    pending = request.body_exists and not request.content.is_eof()
    guard.head_received(body_pending=pending)
    if pending:
        request.content.on_eof(guard.body_received)
    loop = asyncio.get_running_loop()
    timer = loop.call_later(guard.limits.body_timeout, _body_overdue, guard, request)
    try:
        response = await handler(request)
    finally:
        timer.cancel()
        guard.request_done()
    if guard.requests >= guard.limits.max_keepalive_requests:
        response.force_close()
    return response
