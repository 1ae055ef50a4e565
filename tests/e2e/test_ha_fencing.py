"""Three `watchdog serve` replicas on one PostgreSQL store with the Redis lease, through
the faults of issue 13 item 0, against real processes:

- Redis restarted without persistence mid-window (its token counter back at 1): the
  rule fires and exactly one rollback reaches the recorder;
- the leader frozen (SIGSTOP) in the middle of its rollback request and resumed after
  its lease expired: it writes no ``rollback_failed`` and the action log stays
  ``succeeded``;
- a manual rollback asked of a follower is run by the leader (200, not 409);
- an idle window spanning all that: its midpoint and its pass journaled once;
- the webhook and PagerDuty fakes receive each event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web

from examples.stack import WatchdogServer, start_watchdog
from tests.e2e.test_ha import api, metric, until
from tests.fakes import serve
from tests.rules import rules
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.redis import RedisServer, start_redis
from tests.world import config_file, paging

pytestmark = pytest.mark.e2e

TERMINAL = {"rolled_back", "rollback_failed"}


@dataclass
class Target:
    """Per-service /health; /rollback recording Idempotency-Keys, optionally held."""

    url: str = ""
    failing: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # key -> release
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    answered: list[str] = field(default_factory=list)

    async def health(self, request: web.Request) -> web.Response:
        status = 500 if request.match_info["service"] in self.failing else 200
        return web.json_response({}, status=status)

    async def rollback(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        self.keys.append(key)
        gate = self.hold.pop(key, None)
        if gate is not None:  # the leader's request hangs here while it is frozen
            self.arrived.set()
            await gate.wait()
        self.answered.append(key)
        return web.json_response({})


@dataclass
class Webhook:
    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        self.events.append((await request.json())["event"])
        return web.json_response({})


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[Target, Webhook, FakePagerDuty]]:
    target, hook, pd = Target(), Webhook(), FakePagerDuty()
    app = web.Application()
    app.router.add_get("/health/{service}", target.health)
    app.router.add_post("/rollback", target.rollback)
    app.router.add_post("/hook", hook.receive)
    runner, target.url = await serve(app)
    hook.url = f"{target.url}/hook"
    await pd.start()
    yield target, hook, pd
    for gate in target.hold.values():
        gate.set()
    await pd.stop()
    await runner.cleanup()


def config(home: Path, target: Target, hook: Webhook, pd: FakePagerDuty) -> Path:
    health = f"{target.url}/health/{{{{ service }}}}"
    file = (
        rules(home)
        .group("g", "300ms")
        .http("health", health, action="rollback", severity="critical")
    )
    # Declared idempotent: the target dedupes on Idempotency-Key, so a request left in
    # doubt by a frozen leader may be sent again.
    step = {"name": "call", "kind": "http", "url": f"{target.url}/rollback", "idempotent": True}
    return config_file(
        home, file, plans={"p": {"steps": [{**step, "retries": 0, "timeout": "20s"}]}},
        default_plan="p", http_allowed_hosts=["127.0.0.1"], leader_lease="1s", tick="100ms",
        confirm_for="0",  # ends at rolled_back: confirmation has its own tests
        notify=paging(pd.url, webhook_url=hook.url),
    )  # fmt: skip


async def leader(replicas: list[WatchdogServer]) -> WatchdogServer | None:
    found = None
    for r in replicas:
        if await metric(r, "watchdog_leader") == 1:
            found = r
    return found


async def ok_evaluations(server: WatchdogServer) -> float:
    async with httpx.AsyncClient(timeout=2) as client:
        text = (await client.get(f"{server.url}/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("watchdog_rule_evaluations_total{") and 'verdict="ok"' in line
    )


async def open_window(via: WatchdogServer, service: str, window: str | None = None) -> str:
    body = {"service": service, "version": "v2", "previous_version": "v1"}
    if window is not None:
        body["window"] = window
    response = await api(via, "POST", "/api/v1/deployments", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def detail(via: WatchdogServer, window_id: str) -> dict[str, Any]:
    return dict((await api(via, "GET", f"/api/v1/deployments/{window_id}")).json())


async def ended(via: WatchdogServer, window_id: str) -> bool:
    return (await detail(via, window_id))["window"]["phase"] in TERMINAL


async def action_status(dsn: str, window_id: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.fetchval(
            "SELECT status FROM actions WHERE window_id = $1 AND action = 'rollback'", window_id
        )
    finally:
        await conn.close()
    return None if status is None else str(status)


async def test_three_replicas_through_a_redis_restart_and_a_frozen_leader(
    tmp_path: Path, fakes: tuple[Target, Webhook, FakePagerDuty], postgres_dsn: str
) -> None:
    target, hook, pd = fakes
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(start_redis(tmp_path))
        replicas: list[WatchdogServer] = []
        for i in range(3):
            home = tmp_path / f"r{i}"
            settings = {
                "config": str(config(home, target, hook, pd)),
                "store_url": postgres_dsn,
                "leader_redis_url": redis.url,
            }
            cm = start_watchdog(home, settings)
            replicas.append(await asyncio.to_thread(stack.enter_context, cm))
        first = await until(lambda: leader(replicas), "a leader")
        idle = await open_window(replicas[2], "idle", window="8s")  # healthy throughout
        windows = [
            await forgetful_redis(replicas, redis, target),
            await frozen_leader(replicas, target, postgres_dsn),
            await manual_on_a_follower(replicas, target),
        ]
        assert first is not None
        await milestones_once(replicas, idle)
        for r in replicas:
            assert r.proc.poll() is None, r.log()[-2000:]
        await delivered_once(postgres_dsn, [*windows, idle], hook, pd)


async def forgetful_redis(
    replicas: list[WatchdogServer], redis: RedisServer, target: Target
) -> str:
    """Redis restarts empty mid-window; the rule fires; one rollback."""
    window_id = await open_window(replicas[0], "forgetful")

    async def healthy_twice() -> bool:  # judged on the old lease before Redis forgets
        return sum([await ok_evaluations(r) for r in replicas]) >= 2

    await until(healthy_twice, "healthy evaluations before the restart")
    await asyncio.to_thread(redis.restart)

    async def moved_forward() -> bool:
        # The counter said 1; the store issued a token above every earlier one.
        return any("is ahead of the Redis counter: counter moved" in r.log() for r in replicas)

    await until(moved_forward, "a token issued past the forgotten counter")
    await until(lambda: leader(replicas), "a leader after the Redis restart")
    target.failing.add("forgetful")
    await until(lambda: ended(replicas[1], window_id), "the rollback after the restart")
    final = await detail(replicas[1], window_id)
    assert final["window"]["phase"] == "rolled_back", final["events"]
    assert target.keys.count(f"{window_id}:call") == 1
    return window_id


async def frozen_leader(replicas: list[WatchdogServer], target: Target, dsn: str) -> str:
    """The leader freezes inside its rollback request; another finishes; it wakes."""
    window_id = await open_window(replicas[0], "frozen")
    release = target.hold[f"{window_id}:call"] = asyncio.Event()
    target.failing.add("frozen")
    await asyncio.wait_for(target.arrived.wait(), 20)
    old = await leader(replicas)
    assert old is not None
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        others = [r for r in replicas if r is not old]
        await until(lambda: ended(others[0], window_id), "the new leader's rollback")
        assert await action_status(dsn, window_id) == "succeeded"
        release.set()  # the old leader's request is answered while it sleeps

        async def both_answered() -> bool:
            return target.answered.count(f"{window_id}:call") == 2

        await until(both_answered, "the frozen leader's request to be answered")
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)

    async def told() -> bool:
        events = (await detail(others[0], window_id))["events"]
        return any(e["kind"] == "leadership_lost" for e in events)

    await until(told, "the old leader to say it lost leadership")
    events = (await detail(others[0], window_id))["events"]
    kinds = [e["kind"] for e in events]
    assert "rollback_failed" not in kinds, events
    assert kinds.count("rollback_succeeded") == 1, kinds
    lost = next(e for e in events if e["kind"] == "leadership_lost")
    assert lost["message"].endswith("the leader resumes")
    assert await action_status(dsn, window_id) == "succeeded"
    assert (await detail(others[0], window_id))["window"]["phase"] == "rolled_back"
    # The step was in doubt (the old leader froze inside it): the new leader repeated it
    # with the same Idempotency-Key, so the target saw one rollback asked twice.
    assert [k for k in target.keys if k.startswith(window_id)] == [f"{window_id}:call"] * 2
    resumed = next(e for e in events if e["kind"] == "rollback_resumed")
    assert resumed["data"]["in_doubt"] == "call"
    return window_id


async def manual_on_a_follower(replicas: list[WatchdogServer], target: Target) -> str:
    """A person presses rollback on a replica that does not lead."""
    window_id = await open_window(replicas[0], "manual")
    current = await until(lambda: leader(replicas), "a leader")
    follower = next(r for r in replicas if r is not current)
    path = f"/api/v1/deployments/{window_id}/rollback"
    response = await api(follower, "POST", path, json={"reason": "by hand"})
    assert response.status_code == 200, response.text
    await until(lambda: ended(follower, window_id), "the handed-over rollback")
    assert target.keys.count(f"{window_id}:call") == 1
    return window_id


async def milestones_once(replicas: list[WatchdogServer], window_id: str) -> None:
    """Three replicas watched the idle window; only the leader journals milestones."""

    async def passed() -> bool:
        return bool((await detail(replicas[0], window_id))["window"]["phase"] == "passed")

    await until(passed, "the idle window to pass")
    kinds = [e["kind"] for e in (await detail(replicas[1], window_id))["events"]]
    assert kinds.count("window_midpoint") == 1, kinds
    assert kinds.count("window_passed") == 1, kinds
    assert kinds.count("window_opened") == 1, kinds


async def outbox_empty(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'pending'")
        sent = await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'")
    finally:
        await conn.close()
    return bool(pending == 0 and sent > 0)


async def delivered_once(dsn: str, windows: list[str], hook: Webhook, pd: FakePagerDuty) -> None:
    """Every event the webhook takes arrives once; one PagerDuty incident per firing."""
    # Nothing left to send (a sent row is never sent again): duplicates would be here.
    await until(lambda: outbox_empty(dsn), "the outbox to drain")
    counts = Counter((e["window_id"], e["seq"]) for e in hook.events)
    assert [k for k, n in counts.items() if n > 1] == []
    per_kind = Counter((e["window_id"], e["kind"]) for e in hook.events)
    rolled_back, idle = windows[:3], windows[3]
    for w in rolled_back:
        assert per_kind[(w, "window_opened")] == 1
        assert per_kind[(w, "rollback_started")] == 1
        assert per_kind[(w, "rollback_succeeded")] == 1
    assert per_kind[(idle, "window_midpoint")] == 1 and per_kind[(idle, "window_passed")] == 1
    for w in windows[:2]:  # the rule fired: journaled once, by the leader alone
        assert per_kind[(w, "rule_firing")] == 1
    triggers = Counter(e["dedup_key"] for e in pd.events if e["event_action"] == "trigger")
    assert triggers == {f"watchdog-{w}": 1 for w in windows[:2]}, pd.events
