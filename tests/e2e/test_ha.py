"""Three `watchdog serve` replicas share a PostgreSQL store and a Redis lease. The
leader is frozen (SIGSTOP) past its lease, another takes over and rolls back, the old
one is resumed (SIGCONT): over several trials no window is rolled back twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from examples.stack import WatchdogServer, start_watchdog
from tests import world
from tests.fakes import serving
from tests.rules import rules
from tests.servers.common import HANG_GUARD
from tests.servers.redis import start_redis

pytestmark = pytest.mark.e2e

TRIALS = 5
TERMINAL = {"rolled_back", "rollback_failed"}


class Target:
    """/health always failing; /rollback counting requests by Idempotency-Key."""

    def __init__(self) -> None:
        self.url = ""
        self.keys: list[str] = []

    async def rollback(self, request: web.Request) -> web.Response:
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        return web.json_response({})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({}, status=500)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    async with serving(web.post("/rollback", t.rollback), web.get("/health", t.health)) as t.url:
        yield t


def config(home: Path, target: Target, store: str, redis: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    file = rules(home).group("g", "300ms").http("health", f"{target.url}/health", action="rollback")
    cfg = home / "config.json"
    # Declared idempotent (the receiver dedupes on Idempotency-Key): a request a frozen
    # leader left in doubt is sent again at once instead of waited out.
    step = {"name": "call", "kind": "http", "url": f"{target.url}/rollback", "idempotent": True}
    plan = {"steps": [step]}
    cfg.write_text(json.dumps({"plans": {"p": plan}, "default_plan": "p"}))
    return {
        "config": str(cfg),
        "rules": str(file.write()),
        "store_url": store,
        "leader_redis_url": redis,
        "leader_lease": "1s",
        "http_allowed_hosts": "127.0.0.1",
        "tick": "100ms",
        "confirm_for": "0",  # ends at rolled_back: confirmation has its own tests
    }


async def metric(server: WatchdogServer, name: str) -> float | None:
    async with httpx.AsyncClient(timeout=2) as client:
        text = (await client.get(f"{server.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def until(check: Callable[[], Any], what: str, timeout: float = HANG_GUARD) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if result := await check():
                return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def api(server: WatchdogServer, method: str, path: str, **kw: Any) -> httpx.Response:
    return await world.api(server.url, method, path, token=server.token, timeout=5, **kw)


async def test_a_frozen_leader_never_causes_a_second_rollback(
    tmp_path: Path, target: Target, postgres_dsn: str
) -> None:
    rng = random.Random(6)
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(start_redis(tmp_path))
        replicas: list[WatchdogServer] = []
        for i in range(3):
            settings = config(tmp_path / f"r{i}", target, postgres_dsn, redis.url)
            cm = start_watchdog(tmp_path / f"r{i}", settings)
            replicas.append(await asyncio.to_thread(stack.enter_context, cm))
        windows: list[str] = []
        journals: dict[str, dict[str, Any]] = {}
        for trial in range(TRIALS):

            async def leader() -> WatchdogServer | None:
                for r in replicas:
                    if await metric(r, "watchdog_leader") == 1:
                        return r
                return None

            old = await until(leader, "a leader")
            follower = next(r for r in replicas if r is not old)
            body = {"service": f"svc{trial}", "version": "v2", "previous_version": "v1"}
            response = await api(follower, "POST", "/api/v1/deployments", json=body)
            assert response.status_code == 201, response.text
            window_id = response.json()["id"]
            windows.append(window_id)
            await asyncio.sleep(rng.uniform(0, 0.4))  # freeze it anywhere in the decision
            os.kill(old.proc.pid, signal.SIGSTOP)
            try:

                async def finished(w: str = window_id, via: WatchdogServer = follower) -> bool:
                    detail = (await api(via, "GET", f"/api/v1/deployments/{w}")).json()
                    return detail["window"]["phase"] in TERMINAL

                await until(finished, f"trial {trial}: the rollback")
                await asyncio.sleep(1.5)  # past the lease: another replica leads now
            finally:
                os.kill(old.proc.pid, signal.SIGCONT)

            async def deposed(r: WatchdogServer = old) -> bool:
                return await metric(r, "watchdog_leader") == 0 or await leader() is r

            await until(deposed, "the old leader to wake up")
            await asyncio.sleep(1.0)  # time for the woken replica to (not) act
            journals[window_id] = (
                await api(follower, "GET", f"/api/v1/deployments/{window_id}")
            ).json()
        for r in replicas:
            assert r.proc.poll() is None, r.log()[-2000:]
    for window_id in windows:
        detail = journals[window_id]
        kinds = [e["kind"] for e in detail["events"]]
        assert detail["window"]["phase"] == "rolled_back", kinds
        assert "rollback_failed" not in kinds and kinds.count("rollback_succeeded") == 1, kinds
        sent = [k for k in target.keys if k == f"{window_id}:call"]
        # One request. Two only when the freeze fell inside the request itself: the new
        # leader found the step in doubt and repeated it with the same Idempotency-Key
        # (the journal says so); no replica can know whether a frozen one sent it.
        in_doubt = any(
            e["kind"] == "rollback_resumed" and e["data"].get("in_doubt") == "call"
            for e in detail["events"]
        )
        assert len(sent) == 1 or (in_doubt and len(sent) == 2), (kinds, target.keys)
    assert set(target.keys) == {f"{w}:call" for w in windows}
