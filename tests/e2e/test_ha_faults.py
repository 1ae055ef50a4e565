"""Issue 24's fault table, one test per row, each with three real `watchdog serve`
replicas on a real PostgreSQL and a real Redis (every replica through its own breakable
link, ``tests/e2e/faults.py``). Each row must end with exactly one executor call, the
truthful final state, no duplicate notification and no stall past the lease and a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from examples.stack import WatchdogServer, start_watchdog
from tests.e2e.faults import (
    Link,
    Target,
    Webhook,
    command,
    detail,
    ended,
    leaders,
    open_window,
    outbox_drained,
    readyz,
    triggers,
    write_config,
)
from tests.e2e.test_ha import api, metric, until
from tests.fakes import serve
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.redis import RedisServer, start_redis

pytestmark = pytest.mark.e2e


@dataclass
class Cluster:
    replicas: list[WatchdogServer]
    redis: RedisServer
    redis_links: list[Link]
    pg_link: Link
    dsn: str  # direct, for the test's own looks
    target: Target
    hook: Webhook
    pd: FakePagerDuty
    runs: Path  # one line per run of the rollback command
    release: Path  # the command returns once this exists

    def command_runs(self) -> int:
        return len(self.runs.read_text().splitlines()) if self.runs.exists() else 0

    async def leader(self) -> WatchdogServer:
        async def one() -> WatchdogServer | None:
            found = await leaders(self.replicas)
            return found[0] if len(found) == 1 else None

        return await until(one, "exactly one leader")  # type: ignore[no-any-return]

    async def finished(self, window_id: str, timeout: float = 40) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            for r in self.replicas:  # any replica that answers (one may be frozen)
                with contextlib.suppress(Exception):
                    return await ended(r, window_id)
            return None

        return await until(done, f"window {window_id} to end", timeout)  # type: ignore[no-any-return]

    async def delivered_once(self, window_id: str) -> None:
        await until(lambda: outbox_drained(self.dsn), "the outbox to drain", 30)
        seen = [(e["window_id"], e["seq"], e["kind"]) for e in self.hook.events]
        assert self.hook.duplicates() == [], seen
        # what was journalled beside what PagerDuty took: which events triggered twice
        pages = [(e["event_action"], e.get("payload", {}).get("summary")) for e in self.pd.events]
        assert triggers(self.pd, window_id) == 1, f"journal: {seen}\npagerduty: {pages}"


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path,
    dsn: str,
    *,
    steps: str = "command",
    offsets: tuple[float, float, float] = (0.0, 0.0, 0.0),
    hook_delay: float = 0.0,
) -> AsyncIterator[Cluster]:
    target, hook, pd = Target(), Webhook(delay=hook_delay), FakePagerDuty()
    app = web.Application()
    app.router.add_get("/health/{service}", target.health)
    app.router.add_post("/rollback", target.rollback)
    app.router.add_post("/hook", hook.receive)
    runner, target.url = await serve(app)
    hook.url = f"{target.url}/hook"
    await pd.start()
    runs, release = tmp_path / "runs.txt", tmp_path / "release"
    plan = [{"name": "deploy", "kind": "command", "argv": command(runs, release), "timeout": "30s"}]
    if steps == "http+command":
        call = {"name": "call", "kind": "http", "url": f"{target.url}/rollback", "retries": 0}
        plan = [{**call, "timeout": "10s"}, {**plan[0], "retries": 0}]
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(start_redis(tmp_path))
        pg_link = Link(int(dsn.rsplit(":", 1)[1].split("/")[0]))
        pg_port = await pg_link.start()
        links = [Link(redis.port) for _ in range(3)]
        replicas = []
        for i, link in enumerate(links):
            home = tmp_path / f"r{i}"
            settings = {
                "config": str(write_config(home, target, hook, pd, plan)),
                "store_url": pg_link.via(dsn, pg_port),
                "leader_redis_url": link.via(redis.url, await link.start()),
                "test_clock_offset": str(offsets[i]),
            }
            cm = start_watchdog(home, settings)
            replicas.append(await asyncio.to_thread(stack.enter_context, cm))
        c = Cluster(replicas, redis, links, pg_link, dsn, target, hook, pd, runs, release)
        try:
            yield c
        finally:
            release.touch()
            for r in replicas:  # a test that froze one must not leave it frozen
                with contextlib.suppress(ProcessLookupError):
                    os.kill(r.proc.pid, signal.SIGCONT)
            for link in [*links, pg_link]:
                link.heal()
            await asyncio.to_thread(stack.close)
            for link in [*links, pg_link]:
                await link.close()
            await pd.stop()
            await runner.cleanup()


def kinds(found: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in found["events"]]


async def started(c: Cluster) -> None:
    await until(lambda: _true(c.command_runs() >= 1), "the rollback command to start", 30)


async def _true(value: bool) -> bool:
    return value


def assert_rolled_back_once(c: Cluster, found: dict[str, Any]) -> None:
    assert found["window"]["phase"] == "rolled_back", found["events"]
    k = kinds(found)
    assert "rollback_failed" not in k and k.count("rollback_succeeded") == 1, k
    assert c.command_runs() == 1


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    took: list[float] = []
    began = time.monotonic()
    yield took
    took.append(time.monotonic() - began)


# --- row 1: Redis restarted (twice) while the command step runs --------------------------


async def test_redis_restarts_during_the_command_step(tmp_path: Path, postgres_dsn: str) -> None:
    async with cluster(tmp_path, postgres_dsn) as c:
        await c.leader()
        w = (await open_window(c.replicas[0], "flappy"))["id"]
        c.target.failing.add("flappy")
        await started(c)
        for _ in range(2):  # the lease is lost and re-taken while the step runs
            await asyncio.to_thread(c.redis.restart)
            await c.leader()
        c.release.touch()
        with stopwatch() as took:
            found = await c.finished(w)
        assert_rolled_back_once(c, found)
        await c.delivered_once(w)
    print(f"row 1: ended {took[0]:.2f}s after the command returned")


# --- row 2: the leader's Redis link paused during the command step ------------------------


async def test_the_leaders_redis_link_paused_during_the_command_step(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with cluster(tmp_path, postgres_dsn) as c:
        old = await c.leader()
        w = (await open_window(c.replicas[0], "paused"))["id"]
        c.target.failing.add("paused")
        await started(c)
        leader = await c.leader()
        c.redis_links[c.replicas.index(leader)].silence()
        await until(
            lambda: _other_leads(c, leader), "another replica to lead while the link is dead"
        )
        c.release.touch()  # the deposed leader's command returns: its result is evidence
        with stopwatch() as took:
            found = await c.finished(w)
        c.redis_links[c.replicas.index(leader)].heal()
        assert_rolled_back_once(c, found)
        await c.delivered_once(w)
        assert old is not None
    print(f"row 2: ended {took[0]:.2f}s after the command returned")


async def _other_leads(c: Cluster, old: WatchdogServer) -> bool:
    return any(r is not old for r in await leaders(c.replicas))


# --- row 3: PostgreSQL down mid-rollback (after the HTTP step, before the command) --------


async def test_postgres_down_mid_rollback(tmp_path: Path, postgres_dsn: str) -> None:
    async with cluster(tmp_path, postgres_dsn, steps="http+command") as c:
        outage = asyncio.Event()

        async def cut() -> None:  # the HTTP step is done; the store goes down
            c.pg_link.cut()
            outage.set()

        c.target.on_rollback = cut
        c.release.touch()  # the command itself does not wait
        await c.leader()
        w = (await open_window(c.replicas[0], "blip"))["id"]
        c.target.failing.add("blip")
        await asyncio.wait_for(outage.wait(), 30)

        async def loud() -> bool:  # /readyz 503 and the metric, on every replica
            for r in c.replicas:
                status, text = await readyz(r)
                if status != 503 or "store is unreachable" not in text:
                    return False
                if await metric(r, "watchdog_store_up") != 0:
                    return False
            return True

        await until(loud, "every replica to say the store is unreachable")
        c.pg_link.heal()
        with stopwatch() as took:
            found = await c.finished(w)
        assert_rolled_back_once(c, found)
        assert c.target.keys == [f"{w}:call"]
        outages = [e for e in found["events"] if "store was unreachable" in e["message"]]
        assert len(outages) == 1, found["events"]  # journaled once the store answered
        for r in c.replicas:
            assert (await readyz(r))[0] == 200
        for r in c.replicas:  # one line per change, not a stack trace per tick
            assert r.log().count("STORE UNREACHABLE") <= 1, r.log()[-3000:]
        await c.delivered_once(w)
    print(f"row 3: ended {took[0]:.2f}s after the store came back")


# --- row 4: every replica's Redis link silently dead ---------------------------------------


async def test_every_redis_link_silently_dead_then_a_fault(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with cluster(tmp_path, postgres_dsn) as c:
        c.release.touch()
        await c.leader()
        for link in c.redis_links:
            link.silence()

        async def nobody() -> bool:
            return [await metric(r, "watchdog_leader") for r in c.replicas] == [0, 0, 0]

        with stopwatch() as took:
            await until(nobody, "every replica to stop leading (its own deadlines)")
        for link in c.redis_links:
            link.heal()
        await c.leader()
        w = (await open_window(c.replicas[1], "later"))["id"]
        c.target.failing.add("later")
        found = await c.finished(w)
        assert_rolled_back_once(c, found)
        await c.delivered_once(w)
    print(f"row 4: no leader {took[0]:.2f}s after every link went silent")


# --- rows 5-7: one replica's clock 60 s ahead -----------------------------------------------


async def test_a_replica_60s_ahead_uses_the_stores_clock_and_does_not_lead(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with cluster(tmp_path, postgres_dsn, offsets=(60.0, 0.0, 0.0), hook_delay=1.0) as c:
        c.release.touch()
        ahead = c.replicas[0]

        async def refuses() -> bool:
            status, text = await readyz(ahead)
            return status == 503 and "clock" in text

        await until(refuses, "the skewed replica to refuse leadership")
        assert await metric(ahead, "watchdog_leader") == 0
        offset = await metric(ahead, "watchdog_clock_offset_seconds")
        assert offset is not None and -62 < offset < -58
        await c.leader()
        # A window opened on it starts on the store's clock, not 60 s in the future.
        opened = await open_window(ahead, "skewed-ok", window="6s")
        assert abs(_epoch(opened["started_at"]) - time.time()) < 5
        bad = (await open_window(ahead, "skewed-bad"))["id"]
        c.target.failing.add("skewed-bad")
        found = await c.finished(bad)
        assert_rolled_back_once(c, found)

        async def passed() -> dict[str, Any] | None:
            found = await detail(c.replicas[1], opened["id"])
            return found if "window_passed" in kinds(found) else None

        window = await until(passed, "the 6 s window to pass", 30)
        at = {e["kind"]: e["at"] for e in window["events"]}
        assert _epoch(at["window_passed"]) - _epoch(at["window_opened"]) >= 5.9  # not early
        await c.delivered_once(bad)  # a slow receiver, a skewed replica: each event once


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    from datetime import datetime

    return datetime.fromisoformat(str(value)).timestamp()


# --- row 8: a rollback asked of a follower while the leader is frozen -------------------------


async def test_a_rollback_asked_of_a_follower_while_the_leader_is_frozen(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with cluster(tmp_path, postgres_dsn) as c:
        c.release.touch()
        leader = await c.leader()
        w = (await open_window(c.replicas[0], "manual"))["id"]
        follower = next(r for r in c.replicas if r is not leader)
        os.kill(leader.proc.pid, signal.SIGSTOP)
        try:
            path = f"/api/v1/deployments/{w}/rollback"
            response = await api(follower, "POST", path, json={"reason": "by hand"})
            # Claimed within the wait (200) or queued for the next leader (202): never
            # "no replica leads" (503) while it will roll back seconds later.
            assert response.status_code in {200, 202}, response.text
            if response.status_code == 202:
                assert response.headers["Watchdog-Queued"].startswith(
                    "queued: the leader will roll back"
                )
            found = await c.finished(w)
        finally:
            os.kill(leader.proc.pid, signal.SIGCONT)
        assert_rolled_back_once(c, found)
        requested = [e for e in found["events"] if e["kind"] == "rollback_requested"]
        assert len(requested) == 1 and "queued" in requested[0]["message"]
        assert "refused" not in " ".join(e["message"] for e in found["events"])
