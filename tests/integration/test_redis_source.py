"""RedisSource against a real redis-server: PING, INFO fields, a server that stops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.servers.redis import start_redis
from tests.shipped import shipped
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.schema import RedisRule
from watchdog.sources.base import SampleContext
from watchdog.sources.redis import RedisSource

pytestmark = pytest.mark.integration


def ctx() -> SampleContext:
    return SampleContext(window_id="w1", variables={}, at=time.time())


async def test_ping_info_and_a_server_that_stops(tmp_path: Path) -> None:
    ping = RedisRule.model_validate(shipped("redis.yml", "redis-unreachable"))
    memory = RedisRule.model_validate(shipped("redis.yml", "redis-memory"))
    used = RedisRule.model_validate(
        {
            "name": "used",
            "source": "redis",
            "target": "cache",
            "check": "info",
            "field": "used_memory",
            "threshold": "> 0",
        }
    )
    with start_redis(tmp_path, maxmemory="64mb") as server:
        src = RedisSource({"cache": server.url})
        try:
            pong = await src.sample(ping, ctx())
            assert pong.kind is SampleKind.VALUES and 0 <= pong.series[0].value < 1
            bytes_used = (await src.sample(used, ctx())).series[0].value
            ratio = (await src.sample(memory, ctx())).series[0].value
            assert bytes_used > 100_000 and ratio == pytest.approx(bytes_used / (64 << 20), rel=0.2)
            server.stop()
            down = await src.sample(ping, ctx())
            assert down.kind is SampleKind.ERROR and down.transient
            assert "redis target 'cache' unreachable" in (down.error or "")
        finally:
            await src.close()


async def test_no_maxmemory_is_no_data_and_missing_field_is_permanent(tmp_path: Path) -> None:
    memory = RedisRule.model_validate(shipped("redis.yml", "redis-memory"))
    bogus = memory.model_copy(update={"name": "bogus", "field": "no_such_field"})
    with start_redis(tmp_path) as server:
        src = RedisSource({"cache": server.url})
        try:
            assert (await src.sample(memory, ctx())).kind is SampleKind.NO_DATA
            missing = await src.sample(bogus, ctx())
            assert missing.kind is SampleKind.ERROR and not missing.transient
        finally:
            await src.close()
