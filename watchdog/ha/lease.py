"""The Redis leader lease: one replica leads; each acquisition gets a new fencing token.

``SET key <me> NX PX ttl`` takes the lease, a compare-and-``PEXPIRE`` renews it every
``ttl / 3``. Each acquisition ``INCR``s a counter and hands it to the store
(``fence``, :meth:`Store.advance_fence`), which issues the fencing token: above every
token it has issued or accepted, so a Redis restarted without its data (the counter
back at 1) cannot produce a token the store refuses. The counter is then moved forward
to the issued token. Our own belief in the lease ends early: at ``LOCAL_SHARE`` of the ttl counted
from *before* the command that took or renewed it, on the monotonic clock; so a replica
frozen (SIGSTOP, a GC pause, a slow VM) wakes up knowing it no longer leads.

Each attempt has its own deadline (``ttl / 2``, shorter than the part of the lease we
trust), and the client is built with explicit socket, connect and health-check timeouts
(:func:`client_options`): a silently dead link ends the attempt instead of hanging it,
whatever redis-py's own defaults are (they changed between 5 and 8).

A lease lost and re-taken by the same replica with no other token issued in between (a
Redis restart, a link that came back) continues the same line of tokens: work begun
under the earlier token goes on under the new one (:meth:`RedisLease.carry`).

Redis unreachable: nobody can renew, so every replica stops leading within a ttl and
nobody acts. That is said loudly: an error log line on the change (then every
``LOUD_EVERY`` failed attempts) and ``watchdog_leader`` 0.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from watchdog.ha.coord import Fence
from watchdog.plumbing.metrics import Metrics

log = structlog.get_logger("watchdog.ha.lease")

LOCAL_SHARE = 0.8
"""Part of the ttl we trust our lease for, so clock drift and latency stay on the safe side."""

LOUD_EVERY = 10
"""While Redis stays unreachable, log again every this many failed attempts."""

DEADLINE_SHARE = 0.5
"""Part of the ttl one attempt (renew or take) may last: shorter than ``LOCAL_SHARE``."""


def client_options(ttl: float) -> dict[str, Any]:
    """redis-py options that give every lease command its own deadlines (any redis-py >= 5).

    No retries inside the client: the lease loop is the retry, and a hidden retry would
    stretch one attempt past the lease.
    """
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    limit = max(0.05, ttl * DEADLINE_SHARE)  # one command may use the attempt's deadline
    return {
        "socket_timeout": limit,
        "socket_connect_timeout": limit,
        "socket_keepalive": True,
        "health_check_interval": max(1.0, ttl),
        "retry_on_timeout": False,
        "retry": Retry(NoBackoff(), 0),
    }


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_FORWARD = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    """A :class:`watchdog.ha.coord.Coordinator` backed by a Redis lease."""

    def __init__(
        self,
        client: Redis,
        *,
        key: str = "watchdog:leader",
        ttl: float = 10.0,
        metrics: Metrics | None = None,
        on_acquire: Callable[[], None] | None = None,  # must not block: it starts a task
        monotonic: Callable[[], float] = time.monotonic,
        fence: Fence | None = None,  # the store's advance_fence; None: the Redis counter alone
        eligible: Callable[[], str | None] | None = None,  # why not to lead now (a bad clock)
    ) -> None:
        self._redis = client
        self._key = key
        self._token_key = f"{key}:token"
        self._ttl_ms = int(ttl * 1000)
        self.interval = ttl / 3
        self.identity = uuid.uuid4().hex
        self._metrics = metrics
        self._on_acquire = on_acquire
        self._monotonic = monotonic
        self._token: int | None = None
        self._last: int | None = None  # the newest token we held, kept after losing it
        self._line: int | None = None  # first token of our unbroken line (see carry)
        self._deadline = ttl * DEADLINE_SHARE
        self._valid_until = 0.0
        self._failures = 0
        self._fence = fence
        self._eligible = eligible or (lambda: None)
        self._refused: str | None = None

    async def token(self) -> int | None:
        """The fencing token while our lease is (locally) valid, else None."""
        if self._token is not None and self._monotonic() < self._valid_until:
            return self._token
        return None

    async def carry(self, held: int) -> int | None:
        """The current token if ``held`` is of our unbroken line of tokens, else None."""
        current = await self.token()
        if current is None or self._line is None or not self._line <= held <= current:
            return None
        return current

    async def run(self) -> None:
        """Take or renew the lease every ``ttl / 3`` until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)

    async def tick(self) -> None:
        """One attempt: renew if we lead, else try to take the lease."""
        started = self._monotonic()
        try:
            async with asyncio.timeout(self._deadline):
                await self._attempt(started)
            self._failures = 0
        except (RedisError, OSError, TimeoutError) as exc:
            self._unavailable(exc)
        except Exception as exc:  # a bug must not end the loop: nobody would lead again
            log.exception("lease attempt crashed")
            self._unavailable(exc)

    async def _attempt(self, started: float) -> None:
        if self._eligible() is not None:  # said by whoever knows why (ha/health.py)
            if self._token is not None:
                await self._redis.eval(_RELEASE, 1, self._key, self.identity)
                self._valid_until = 0.0
            self._follow()
            return
        if await self.token() is not None and await self._renew():
            self._valid_until = started + LOCAL_SHARE * self._ttl_ms / 1000
        elif await self._acquire():
            self._valid_until = started + LOCAL_SHARE * self._ttl_ms / 1000
            self._acquired()
        else:
            self._follow()

    async def _renew(self) -> bool:
        renewed = await self._redis.eval(_RENEW, 1, self._key, self.identity, self._ttl_ms)
        return bool(renewed)

    async def _acquire(self) -> bool:
        if not await self._redis.set(self._key, self.identity, nx=True, px=self._ttl_ms):
            return False
        counter = int(await self._redis.incr(self._token_key))
        if self._fence is None:
            self._continue_line(counter)
            return True
        try:
            token = await self._fence(counter)
        except Exception as exc:  # the store is down: a lease without a token acts on nothing
            log.error(
                "NO LEADER: the store could not issue a fencing token; releasing the lease",
                error=f"{type(exc).__name__}: {exc}",
            )
            await self._redis.eval(_RELEASE, 1, self._key, self.identity)
            return False
        if token != counter:
            log.warning(
                "fencing token (issued by the store) is ahead of the Redis counter: counter moved",
                counter=counter,
                token=token,
            )
            await self._redis.eval(_FORWARD, 1, self._token_key, token)
        self._continue_line(token)
        return True

    def _continue_line(self, token: int) -> None:
        # The next token after our own: nobody else was issued one in between, so
        # nobody else can have acted; our running work is still ours.
        if self._last is None or self._line is None or token != self._last + 1:
            self._line = token
        self._last = self._token = token

    def refused(self, token: int, newest: int) -> None:
        """The store refused our token: another replica took over. Stop leading now.

        A token we no longer hold (a decision still in flight from an earlier lease) is
        already known to be stale: it changes nothing here.
        """
        if token != self._token:
            return
        self._refused = f"fencing token #{token} refused by the store (newest #{newest})"
        self._token = self._line = None
        self._valid_until = 0.0
        self._set_metric(False)

    def problem(self) -> str | None:
        """A refused token, until the next lease attempt settles who leads."""
        return self._refused

    def _acquired(self) -> None:
        log.warning("leader lease acquired", token=self._token, identity=self.identity)
        self._refused = None
        self._set_metric(True)
        if self._on_acquire is not None:
            self._on_acquire()

    def _follow(self) -> None:
        self._refused = None  # another replica leads: the refusal was a hand-over
        if self._token is not None:
            log.warning("leader lease lost: another replica leads", identity=self.identity)
        self._token = None
        self._set_metric(False)

    def _unavailable(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % LOUD_EVERY == 0:
            log.error(
                "NO LEADER: Redis is unavailable; this replica will not act",
                error=f"{type(exc).__name__}: {exc}",
                attempts=self._failures,
            )
        if self._monotonic() >= self._valid_until:
            self._token = None
            self._set_metric(False)

    def _set_metric(self, leading: bool) -> None:
        if self._metrics is not None:
            self._metrics.set_leader(leading)

    async def close(self) -> None:
        """Give the lease up (if still ours) so another replica takes over at once."""
        try:
            if self._token is not None:
                await self._redis.eval(_RELEASE, 1, self._key, self.identity)
        except RedisError:
            log.warning("could not release the leader lease; it expires by itself")
        finally:
            self._token = None
            self._set_metric(False)
            await self._redis.aclose()
