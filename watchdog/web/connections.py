"""Connection hygiene for the HTTP server: deadlines, keep-alive limits and a cap.

Connections that send nothing, or half a header, used to stay open for ever: 1,100 of
them under ``ulimit -n 1024`` stopped ``/healthz`` and made a rollback fail with "Too
many open files". Now:

* **Head deadline.** A request's head (request line and headers) must arrive within
  ``header_timeout`` of the connection opening, and the next one within
  ``keepalive_timeout`` of the previous response; otherwise the connection is closed.
* **Body deadline.** Once the head is in, the body must have fully arrived within
  ``body_timeout``, whoever reads it; otherwise the connection is dropped and the
  handler's read ends (a quiet 408, never a logged traceback).
* **Keep-alive limits.** aiohttp's idle timeout is ``keepalive_timeout`` and a
  connection serves at most ``max_keepalive_requests`` requests.
* **A cap.** At most ``cap`` connections at once. A new connection beyond it first
  evicts the oldest connection still waiting for its head (an idle or slow client), so
  a flood of idle connections cannot lock out ``/healthz``; when every connection is
  serving a request the newcomer is answered ``503`` with ``Retry-After`` and closed.
  The cap stays :data:`FD_RESERVE` descriptors below the process's open-file limit,
  so the store, the sources and the rollback's subprocesses always find descriptors.

:class:`ConnectionPool` is the protocol factory wrapped around aiohttp's server (each
connection a :class:`Guard` in front of aiohttp's handler; ``listen.py`` serves it);
:func:`deadlines_middleware` tells the guard when a request's head has arrived and when
it is done.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import structlog
from aiohttp import web

log = structlog.get_logger("watchdog.web.connections")

# Descriptors kept for everything but guarded client connections: the store, sources,
# logs, a rollback's subprocess pipes, and the sockets in flight that the cap cannot
# see yet: asyncio's accept burst (listen.BACKLOG) and evicted ones not yet closed.
FD_RESERVE = 256
_BUSY_BODY = b'{"error":{"status":503,"message":"too many connections: retry in a second"}}\n'
_BUSY_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode()
    + _BUSY_BODY
)
_WARN_EVERY = 60.0  # seconds between "cap reached" log lines (never one per connection)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConnectionLimits:
    """The server's per-connection deadlines and its connection cap."""

    header_timeout: float = 5.0
    body_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    max_keepalive_requests: int = 1000
    max_connections: int = 1000

    def cap(self, nofile: int | None = None) -> int:
        """The connection cap under the open-file limit ``nofile`` (default: this process's)."""
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, nofile - FD_RESERVE))


class Guard(asyncio.Protocol):
    """One connection: aiohttp's handler behind a head deadline."""

    def __init__(self, pool: ConnectionPool, inner: asyncio.Protocol) -> None:
        self._pool = pool
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.busy = False  # a request's head has arrived and it is not done yet
        self.requests = 0

    @property
    def limits(self) -> ConnectionLimits:
        """The limits this connection is held to."""
        return self._pool.limits

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the head deadline, then hand over to aiohttp."""
        self._transport = cast(asyncio.Transport, transport)
        self._pool.opened(self)
        self._arm(self._pool.limits.header_timeout)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Bytes go to aiohttp unchanged."""
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Half-close, as aiohttp decides."""
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        """Flow control, as aiohttp decides."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Flow control, as aiohttp decides."""
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._cancel()
        self._pool.closed(self)
        self._inner.connection_lost(exc)

    def head_received(self) -> None:
        """A request's head is in: no head deadline while it is served."""
        self.busy = True
        self.requests += 1
        self._cancel()
        self._pool.serving(self)

    def request_done(self) -> None:
        """The response is out: the next head must come within the keep-alive time."""
        self.busy = False
        self._pool.waiting(self)
        self._arm(self._pool.limits.keepalive_timeout)

    def abort(self) -> None:
        """Drop the connection now (its descriptor is released at once)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def _arm(self, delay: float) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._overdue)

    def _overdue(self) -> None:
        self._timer = None
        if not self.busy:
            self.abort()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Busy(asyncio.Protocol):
    """Answers 503 and closes: every slot is serving a request."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        t.write(_BUSY_503)
        t.close()


class ConnectionPool:
    """The protocol factory: every connection guarded, at most ``cap`` at once."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limits: ConnectionLimits,
        cap: int,
        clock: Callable[[], float],
    ) -> None:
        self._factory = factory
        self.limits = limits
        self.cap = cap
        self._clock = clock
        self._open: set[Guard] = set()
        self._waiting: dict[Guard, None] = {}  # waiting for a head, oldest first
        self.evicted = 0
        self.refused = 0
        self._warned_at = float("-inf")

    def __call__(self) -> asyncio.Protocol:
        """A protocol for a new connection."""
        if len(self._open) >= self.cap and not self._evict_oldest_waiting():
            self.refused += 1
            self._warn()
            return _Busy()
        return Guard(self, self._factory())

    def _evict_oldest_waiting(self) -> bool:
        oldest = next(iter(self._waiting), None)
        if oldest is None:
            return False
        self.evicted += 1
        self._warn()
        del self._waiting[oldest]
        self._open.discard(oldest)  # its descriptor goes with abort(), not later
        oldest.abort()
        return True

    def _warn(self) -> None:
        now = self._clock()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "connection cap reached: idle connections evicted, busy ones answered 503",
                cap=self.cap,
                evicted=self.evicted,
                refused=self.refused,
            )

    def opened(self, guard: Guard) -> None:
        """A guarded connection started."""
        self._open.add(guard)
        self._waiting[guard] = None

    def serving(self, guard: Guard) -> None:
        """It is serving a request."""
        self._waiting.pop(guard, None)

    def waiting(self, guard: Guard) -> None:
        """It waits for its next request."""
        if guard in self._open:
            self._waiting[guard] = None

    def closed(self, guard: Guard) -> None:
        """It ended."""
        self._open.discard(guard)
        self._waiting.pop(guard, None)

    @property
    def open_connections(self) -> int:
        """How many connections are open."""
        return len(self._open)

    @property
    def waiting_connections(self) -> int:
        """How many of them wait for a request (the ones a newcomer may evict)."""
        return len(self._waiting)


def _guard_of(request: web.Request) -> Guard | None:
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    return protocol if isinstance(protocol, Guard) else None


def _body_overdue(guard: Guard, request: web.Request) -> None:
    if not request.content.is_eof():  # the body has not fully arrived
        guard.abort()


@web.middleware
async def deadlines_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tell the connection's guard a request came; hold its body to the deadline."""
    guard = _guard_of(request)
    if guard is None:  # served without a ConnectionPool (tests' plain runners)
        return await handler(request)
    guard.head_received()
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
