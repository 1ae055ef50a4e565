"""The Redis leader lease against a real redis-server, with a hand-moved monotonic clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tests.servers.redis import RedisServer, start_redis
from watchdog.ha.lease import RedisLease, client_options
from watchdog.plumbing.metrics import Metrics
from watchdog.store.sqlite import SqliteStore


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


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "watchdog.db"))
    await s.open()
    yield s
    await s.close()


async def test_tokens_stay_monotonic_across_a_redis_that_forgets(
    redis_server: RedisServer, store: SqliteStore
) -> None:
    mono = Mono()
    a = lease(redis_server, mono, fence=store.advance_fence)
    await a.tick()
    assert await a.token() == 1
    await store.advance_fence(20)  # twenty hand-overs later the store has issued 21
    await a.tick()  # renewal keeps the token it has
    assert await a.token() == 1 and await store.advance_fence(0) == 21

    redis_server.restart()  # no persistence: the lease and the counter are gone
    mono.t += 1
    b = lease(redis_server, mono, fence=store.advance_fence)
    await b.tick()
    token = await b.token()
    assert token == 22  # INCR said 1; the store's high-water mark wins
    client = Redis.from_url(redis_server.url)
    assert int(await client.get("watchdog:leader:token")) == 22  # counter moved forward
    await client.aclose()
    assert await store.claim_action("w1", "rollback", token=22, actor="b", at=1.0)
    await a.tick()  # the old leader neither renews nor takes it back
    assert await a.token() is None
    await a.close()
    await b.close()


async def test_a_refused_token_stops_leading_and_readyz_says_so(
    redis_server: RedisServer, store: SqliteStore
) -> None:
    mono = Mono()
    registry = CollectorRegistry()
    a = lease(redis_server, mono, fence=store.advance_fence, metrics=Metrics(registry))
    await a.tick()
    assert await a.token() == 1 and a.problem() is None
    assert await store.advance_fence(7) == 7  # another replica acquired meanwhile
    a.refused(0, 7)  # a token it no longer holds: known stale, nothing changes
    assert await a.token() == 1 and a.problem() is None
    a.refused(1, 7)  # what the pipeline reports when the store refuses token 1
    assert await a.token() is None
    assert a.problem() == "fencing token #1 refused by the store (newest #7)"
    assert registry.get_sample_value("watchdog_leader") == 0
    # Its own lease key is still in Redis: the next attempt neither renews nor takes it,
    # so it follows; the replica that next acquires gets a token above 7.
    await a.tick()
    assert await a.token() is None and a.problem() is None
    await gone(redis_server)
    await a.tick()
    assert await a.token() == 8
    await a.close()


async def test_no_token_from_the_store_means_no_leader(
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = SqliteStore(str(tmp_path / "never-opened.db"))  # every call fails
    a = lease(redis_server, Mono(), fence=down.advance_fence)
    await a.tick()
    assert await a.token() is None
    said = capsys.readouterr().out + caplog.text  # as in the test above
    assert "the store could not issue a fencing token" in said
    client = Redis.from_url(redis_server.url)
    assert await client.exists("watchdog:leader") == 0  # released for another replica
    await client.aclose()
    await a.close()


async def test_a_lease_retaken_by_the_same_replica_carries_its_work_on(
    redis_server: RedisServer, store: SqliteStore
) -> None:
    mono = Mono()
    a = lease(redis_server, mono, fence=store.advance_fence)
    await a.tick()
    assert await a.token() == 1 and await a.carry(1) == 1
    redis_server.restart()  # the lease is gone; a takes it again, nobody in between
    await a.tick()  # the old connection is closed: one failed attempt (no hidden retry)
    await a.tick()
    assert await a.token() == 2
    assert await a.carry(1) == 2  # a rollback begun under #1 goes on under #2

    # Another replica leads in between: the line is broken, recovery owns the work.
    await Redis.from_url(redis_server.url).delete("watchdog:leader")
    b = lease(redis_server, mono, fence=store.advance_fence)
    await b.tick()
    assert await b.token() == 3
    await b.close()
    await a.tick()
    assert await a.token() == 4
    assert await a.carry(2) is None and await a.carry(4) == 4
    await a.close()


class Blackhole:
    """A TCP proxy to Redis that can go silent: connections stay open, nothing passes
    (a dead link no RST ever reports)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if self.silent.is_set():
                    continue  # swallowed
                dst.write(data)
                await dst.drain()


async def test_a_silently_dead_link_ends_each_attempt_within_its_deadline(
    redis_server: RedisServer,
) -> None:
    # Whatever redis-py's defaults (none before 8): the lease's own timeouts apply.
    proxy = Blackhole(redis_server.port)
    port = await proxy.start()
    mono = Mono()
    ttl = 2.0
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", **client_options(ttl))
    a = RedisLease(client, ttl=ttl, monotonic=mono)
    await a.tick()
    assert await a.token() == 1
    proxy.silent.set()
    started = time.monotonic()
    await a.tick()  # hangs forever without a deadline
    assert time.monotonic() - started < ttl
    mono.t += ttl  # its own reckoning runs out: no longer the leader
    await a.tick()
    assert await a.token() is None
    assert proxy.server is not None
    proxy.server.close()
    await a.close()


async def test_a_replica_that_must_not_lead_releases_the_lease_and_follows(
    redis_server: RedisServer,
) -> None:
    why: list[str | None] = [None]
    mono = Mono()
    a = lease(redis_server, mono, eligible=lambda: why[0])
    b = lease(redis_server, mono)
    await a.tick()
    assert await a.token() == 1
    why[0] = "this replica's clock is 60.0s off the store's"
    await a.tick()  # gives the lease up at once: another replica takes over
    assert await a.token() is None
    await b.tick()
    assert await b.token() == 2
    why[0] = None
    await a.tick()
    assert await a.token() is None  # b leads now
    await a.close()
    await b.close()
