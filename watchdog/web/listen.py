"""Listening: the aiohttp runner behind a :class:`~watchdog.web.connections.ConnectionPool`,
the pool's metrics, and the process's open-file limit raised at start."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from aiohttp.web_runner import BaseRunner, BaseSite
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from watchdog.web.connections import ConnectionLimits, ConnectionPool

# asyncio accepts up to `backlog` connections in one burst before any protocol (and so
# the cap) sees them: the burst must fit in the reserve too (FD_RESERVE), beside the
# store, sources, logs and a rollback's subprocess pipes.
BACKLOG = 64


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one (a service default of 1024 is
    easily reached); returns the limits before and after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # e.g. the kernel's nr_open is lower
            return soft, soft
        return soft, target
    return soft, soft


class GuardedSite(BaseSite):
    """A TCP site whose connections go through a :class:`ConnectionPool`."""

    __slots__ = ("_host", "_pool_args", "_port", "pool")

    def __init__(
        self,
        runner: BaseRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._pool_args = (limits, clock)
        self.pool: ConnectionPool | None = None

    @property
    def name(self) -> str:
        """``http://host:port``."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen; each connection is guarded."""
        await super().start()
        server = self._runner.server
        assert server is not None
        limits, clock = self._pool_args
        self.pool = ConnectionPool(server, limits, limits.cap(), clock)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.pool, self._host, self._port, backlog=BACKLOG)

    @property
    def port(self) -> int:
        """The bound port (``port=0`` picks a free one)."""
        sockets: Any = getattr(self._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self._port


async def start_site(
    web_app: web.Application,
    host: str,
    port: int,
    limits: ConnectionLimits,
    clock: Callable[[], float],
) -> tuple[web.AppRunner, GuardedSite]:
    """Serve ``web_app`` on ``host:port`` with the connection limits (``port`` 0: any)."""
    runner = web.AppRunner(
        web_app,
        access_log=None,
        keepalive_timeout=limits.keepalive_timeout,
        lingering_time=min(2.0, limits.body_timeout),  # draining an unread body
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, limits, clock)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site


class ConnectionsCollector(Collector):
    """The pool at scrape time: connections open, evicted and refused (503)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[Metric]:
        """Three samples read from the pool."""
        p = self._pool
        yield GaugeMetricFamily(
            "watchdog_http_connections_open", "Client connections open.", value=p.open_connections
        )
        yield GaugeMetricFamily(
            "watchdog_http_connections_cap", "Client connections allowed at once.", value=p.cap
        )
        yield CounterMetricFamily(
            "watchdog_http_connections_evicted",
            "Connections waiting for a request closed to admit a newer one at the cap.",
            value=p.evicted,
        )
        yield CounterMetricFamily(
            "watchdog_http_connections_refused",
            "Connections answered 503 at the cap (every connection busy).",
            value=p.refused,
        )

    def describe(self) -> Iterator[Metric]:
        """Nothing to describe ahead of a scrape."""
        return iter(())
