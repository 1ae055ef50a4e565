"""Runbook triggers on Redis, against a real redis-server: rules/redis.yml as shipped,
with `for` compressed to a second. Both are `notify`: people decide."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.e2e.runbook import (
    Receiver,
    assert_fires,
    assert_passes_quietly,
    pack,
    receiver,
    watchdog,
)
from tests.servers.redis import RedisServer, start_redis

pytestmark = pytest.mark.e2e


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
def cache(tmp_path: Path) -> RedisServer:
    with start_redis(tmp_path, maxmemory="4mb") as server:
        yield server


async def test_healthy_redis_window_passes(
    tmp_path: Path, cache: RedisServer, rec: Receiver
) -> None:
    async with watchdog(
        tmp_path, pack("redis.yml"), rec.port, redis_targets={"cache": cache.url}
    ) as app:
        detail = await assert_passes_quietly(app, rec)
    memory = next(r for r in detail.rules if r.name == "redis-memory")
    assert memory.last_value is not None and 0 < memory.last_value < 0.9


async def test_redis_stopped_mid_window_notifies(
    tmp_path: Path, cache: RedisServer, rec: Receiver
) -> None:
    async with watchdog(
        tmp_path, pack("redis.yml"), rec.port, redis_targets={"cache": cache.url}
    ) as app:
        await assert_fires(app, rec, "redis-unreachable", "notify", cache.stop)


async def test_redis_memory_over_the_limit_notifies(
    tmp_path: Path, cache: RedisServer, rec: Receiver
) -> None:
    async def fill() -> None:
        client = aioredis.Redis.from_url(cache.url)
        try:
            for i in range(64):  # until writes hit maxmemory (noeviction refuses them)
                try:
                    await client.set(f"blob:{i}", b"x" * 100_000)
                except aioredis.ResponseError:
                    break
        finally:
            await client.aclose()

    async with watchdog(
        tmp_path, pack("redis.yml"), rec.port, redis_targets={"cache": cache.url}
    ) as app:
        await assert_fires(app, rec, "redis-memory", "notify", fill)
