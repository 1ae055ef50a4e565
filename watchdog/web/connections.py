"""Connection hygiene for the HTTP server: deadlines, keep-alive limits and a cap.

Idle or half-sent connections (issue 13) and Slack-shaped heads with trickled bodies
(issue 25 M2) used to lock ``/healthz`` out. Now:

* **Deadlines.** A request's head must arrive within ``header_timeout`` of the
  connection opening (the next one within ``keepalive_timeout`` of the previous
  response); its body within ``body_timeout`` of the head, whoever reads it, or the
  connection is dropped (a quiet 408, never a logged traceback). A connection serves
  at most ``max_keepalive_requests`` requests.
* **A cap.** At most ``cap`` connections at once, :data:`FD_RESERVE` descriptors below
  the open-file limit (the store, sources and a rollback's subprocesses need some). A
  newcomer beyond it evicts the oldest *evictable* connection; when none is, it is
  answered ``503`` with ``Retry-After`` and closed. Evictable: waiting for a head, or
  still receiving a body, since nothing has authenticated a request before its body is
  in (a Slack signature covers the body). A request whose body came with its head, or
  that carries a valid token (:func:`authenticated`), is served, never evicted.
* **A per-client share.** At the cap, a client address holding more than
  ``client_share`` of it gives up its own oldest evictable connection for its newcomer,
  never another client's: one address's flood cannot push out everyone else.

:class:`ConnectionPool` is the protocol factory around aiohttp's server (a :class:`Guard`
per connection); ``deadlines.py``'s middleware tells the guard when a request's head and
body have arrived and when it is done.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import structlog

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


@dataclass(frozen=True)
class ConnectionLimits:
    """The server's per-connection deadlines and its connection cap."""

    header_timeout: float = 5.0
    body_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    max_keepalive_requests: int = 1000
    max_connections: int = 1000
    client_share: float = 0.5  # of the cap, per client address (see the module docstring)

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
        self.client = ""  # the peer's address: its share of the cap

    @property
    def limits(self) -> ConnectionLimits:
        """The limits this connection is held to."""
        return self._pool.limits

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the head deadline, then hand over to aiohttp."""
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._pool.opened(self):  # no room: answered 503, aiohttp never sees it
            self._inner = asyncio.Protocol()  # whose callbacks do nothing
            self._transport.write(_BUSY_503)
            self._transport.close()
            return
        self._arm(self._pool.limits.header_timeout)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Bytes go to aiohttp unchanged (so do half-closes and flow control)."""
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:  # noqa: D102
        return self._inner.eof_received()

    def pause_writing(self) -> None:  # noqa: D102
        self._inner.pause_writing()

    def resume_writing(self) -> None:  # noqa: D102
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._cancel()
        self._pool.closed(self)
        self._inner.connection_lost(exc)

    def head_received(self, body_pending: bool = False) -> None:
        """A request's head is in: no head deadline while it is served. While its body
        is ``body_pending`` it stays evictable (see :meth:`body_received`)."""
        self.busy = True
        self.requests += 1
        self._cancel()
        if not body_pending:
            self._pool.serving(self)

    def body_received(self) -> None:
        """The whole body is in (or the request authenticated): no longer evictable."""
        if self.busy:
            self._pool.serving(self)

    def request_done(self) -> None:
        """The response is out: the next head must come within the keep-alive time."""
        self.busy = False
        self._pool.serving(self)  # re-queued as the newest waiting one
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
        self._waiting: dict[Guard, None] = {}  # evictable (no head, or body), oldest first
        self._clients: dict[str, int] = {}  # open connections per client address
        self.evicted = 0
        self.refused = 0
        self._warned_at = float("-inf")

    def __call__(self) -> asyncio.Protocol:
        """A protocol for a new connection (admitted once its address is known)."""
        return Guard(self, self._factory())

    def _make_room(self, client: str) -> bool:
        """Evict for a newcomer at the cap: a client past its share gives up one of its
        own evictable connections, anyone else the oldest evictable one."""
        if self._clients.get(client, 0) >= self.share and self._evict_oldest_waiting(client):
            return True
        return self._evict_oldest_waiting()

    def _evict_oldest_waiting(self, client: str | None = None) -> bool:
        mine = (g for g in self._waiting if client is None or g.client == client)
        oldest = next(mine, None)
        if oldest is None:
            return False
        self.evicted += 1
        self._warn()
        self._forget(oldest)  # its descriptor goes with abort(), not later
        oldest.abort()
        return True

    def _forget(self, guard: Guard) -> None:
        self._open.discard(guard)
        self._waiting.pop(guard, None)
        count = self._clients.pop(guard.client, 1) - 1
        if count > 0:
            self._clients[guard.client] = count

    @property
    def share(self) -> int:
        """Connections one client address may hold at once."""
        return max(1, int(self.cap * self.limits.client_share))

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

    def opened(self, guard: Guard) -> bool:
        """A guarded connection started; False when there is no room (answer 503)."""
        if len(self._open) >= self.cap and not self._make_room(guard.client):
            self.refused += 1
            self._warn()
            return False
        self._open.add(guard)
        self._clients[guard.client] = self._clients.get(guard.client, 0) + 1
        self.waiting(guard)
        return True

    def serving(self, guard: Guard) -> None:
        """It is serving a request."""
        self._waiting.pop(guard, None)

    def waiting(self, guard: Guard) -> None:
        """It waits for its next request (or for its request's body)."""
        if guard in self._open:
            self._waiting[guard] = None

    def closed(self, guard: Guard) -> None:
        """It ended."""
        if guard in self._open:
            self._forget(guard)

    @property
    def open_connections(self) -> int:
        """How many connections are open."""
        return len(self._open)

    @property
    def waiting_connections(self) -> int:
        """How many of them wait for a request (the ones a newcomer may evict)."""
        return len(self._waiting)
