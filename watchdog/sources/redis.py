"""The ``redis`` source: ``PING`` round trip or a numeric ``INFO`` field (redis.asyncio).

Each target (a name -> Redis URL from Settings) gets one client with its own
connection pool. A refused connection, a timeout or a server that stopped answering
is a transient ``Sample.failed``: the "Redis unreachable" rule sets ``on_error: breach``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from watchdog.foundation.model import Sample
from watchdog.rulefile.schema import RedisRule
from watchdog.sources.base import Parts, SampleContext, SourceKind, missing_target

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# redis is imported where it is used: loading the kinds table (every rule file load)
# must not pay for it when no rule reads Redis (bench/footprint.py).


class RedisSource:
    """Samples :class:`RedisRule` checks against the configured targets."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._urls = dict(targets)
        self._clients: dict[str, aioredis.Redis] = {}

    async def sample(self, rule: RedisRule, ctx: SampleContext) -> Sample:
        """PING (value: seconds) or read INFO now."""
        from redis.exceptions import RedisError

        if not ctx.live:
            return Sample.failed("redis checks cannot look back in time", transient=False)
        if rule.target not in self._urls:
            return Sample.failed(f"redis target {rule.target!r} is not configured", transient=False)
        client = self._client(rule.target, rule.timeout)
        try:
            async with asyncio.timeout(rule.timeout):
                if rule.check == "ping":
                    started = time.monotonic()
                    await client.ping()
                    return Sample.of(time.monotonic() - started, detail="PONG")
                info: dict[str, Any] = await client.info()
        except TimeoutError:
            return Sample.failed(
                f"no answer from redis target {rule.target!r} in {rule.timeout:g}s"
            )
        except (RedisError, OSError) as exc:
            return Sample.failed(f"redis target {rule.target!r} unreachable: {_short(exc)}")
        return _from_info(rule, info)

    def _client(self, target: str, timeout: float) -> aioredis.Redis:
        import redis.asyncio as aioredis

        client = self._clients.get(target)
        if client is None:
            client = aioredis.Redis.from_url(
                self._urls[target],
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
            )
            self._clients[target] = client
        return client

    async def close(self) -> None:
        """Close every client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _from_info(rule: RedisRule, info: Mapping[str, Any]) -> Sample:
    assert rule.field is not None  # the schema requires it for check: info
    value = _number(info, rule.field)
    if value is None:
        return Sample.failed(f"INFO has no numeric field {rule.field!r}", transient=False)
    if rule.ratio_to is None:
        return Sample.of(value, detail=f"{rule.field}={value:g}")
    limit = _number(info, rule.ratio_to)
    if limit is None:
        return Sample.failed(f"INFO has no numeric field {rule.ratio_to!r}", transient=False)
    if limit <= 0:
        return Sample.no_data(f"{rule.ratio_to} is {limit:g}: no limit to compare with")
    return Sample.of(value / limit, detail=f"{rule.field}={value:g} of {rule.ratio_to}={limit:g}")


def _number(info: Mapping[str, Any], name: str) -> float | None:
    value = info.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _short(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__)[:300]


def _build(p: Parts) -> RedisSource | None:
    targets = p.settings.redis_targets
    if not targets:  # rules naming a target are refused unless it is configured
        return None
    return RedisSource({k: v.get_secret_value() for k, v in targets.items()})


KIND = SourceKind(
    name="redis", rule=RedisRule, build=_build,
    unconfigured=lambda rule, s: missing_target(rule, s.redis_targets, "WATCHDOG_REDIS_TARGETS"),
    blind=lambda rule: f"redis target {rule.target}", replay=None, graph=None, title="Redis",
)  # fmt: skip
