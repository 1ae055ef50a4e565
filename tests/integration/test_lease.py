"""The Redis leader lease against a real redis-server, with a hand-moved monotonic clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.servers.redis import RedisServer, start_redis
from watchdog.ha.lease import RedisLease
from watchdog.metrics import Metrics


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    with start_redis(tmp_path) as server:
        yield server


def lease(server: RedisServer, mono: Mono, ttl: float = 0.3, **kw: object) -> RedisLease:
    return RedisLease(Redis.from_url(server.url), ttl=ttl, monotonic=mono, **kw)  # type: ignore[arg-type]


async def gone(server: RedisServer, key: str = "watchdog:leader") -> None:
    client = Redis.from_url(server.url)
    deadline = time.monotonic() + 10
    while await client.exists(key):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await client.aclose()


async def test_one_leader_and_each_takeover_gets_a_newer_token(redis_server: RedisServer) -> None:
    mono = Mono()
    acquired: list[str] = []
    a = lease(redis_server, mono, on_acquire=lambda: acquired.append("a"))
    b = lease(redis_server, mono, on_acquire=lambda: acquired.append("b"))
    await a.tick()
    await b.tick()
    assert (await a.token(), await b.token()) == (1, None)

    # a freezes: its lease runs out in Redis and in its own reckoning.
    await gone(redis_server)
    mono.t += 1
    await b.tick()
    assert await b.token() == 2
    assert await a.token() is None  # woken up, it knows it no longer leads
    await a.tick()  # cannot renew, cannot take it
    assert await a.token() is None and await b.token() == 2
    assert acquired == ["a", "b"]
    await b.tick()  # renewal keeps the token
    assert await b.token() == 2
    await a.close()
    await b.close()


async def test_closing_hands_the_lease_over_at_once(redis_server: RedisServer) -> None:
    mono = Mono()
    a, b = lease(redis_server, mono, ttl=60), lease(redis_server, mono, ttl=60)
    await a.tick()
    await a.close()
    await b.tick()
    assert await b.token() == 2
    await b.close()


async def test_redis_down_means_no_leader_and_says_so(
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mono = Mono()
    registry = CollectorRegistry()
    a = lease(redis_server, mono, metrics=Metrics(registry))
    await a.tick()
    assert await a.token() == 1
    assert registry.get_sample_value("watchdog_leader") == 1
    redis_server.stop()
    mono.t += 1  # past the lease
    await a.tick()
    assert await a.token() is None
    assert registry.get_sample_value("watchdog_leader") == 0
    # structlog prints (capsys) until a test configures it for stdlib logging (caplog)
    said = capsys.readouterr().out + caplog.text
    assert "NO LEADER: Redis is unavailable" in said
    await a.close()
