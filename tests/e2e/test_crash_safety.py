"""kill -9 a real `watchdog serve` at each point of a rollback, restart it, and count.

The process kills itself at a named point (``WATCHDOG_TEST_CRASH_AT``, see
watchdog/pipeline/crashpoints.py); the restart runs without it on the same store. The rollback
endpoint and PagerDuty are local fakes in this test process, so every request they
received is counted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
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
from tests.servers.pagerduty import FakePagerDuty
from tests.world import config_file, paging
from watchdog.evaluation.evaluate import DUE_SLACK

pytestmark = pytest.mark.e2e

TERMINAL = {"rolled_back", "rollback_failed"}


@dataclass
class Target:
    """A deploy system's API: a failing /health, and /rollback and /confirm honouring
    Idempotency-Key (a repeated key is answered from the first call, not performed)."""

    url: str = ""
    requests: dict[str, list[str]] = field(default_factory=dict)  # path -> keys received
    performed: dict[str, list[str]] = field(default_factory=dict)  # path -> keys acted on

    async def action(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        self.requests.setdefault(request.path, []).append(key)
        done = self.performed.setdefault(request.path, [])
        if key not in done:
            done.append(key)
        return web.json_response({"ok": True})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "broken"}, status=500)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    routes = web.post("/rollback", t.action), web.post("/confirm", t.action)
    async with serving(*routes, web.get("/health", t.health)) as t.url:
        yield t


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    pd = FakePagerDuty()
    await pd.start()
    yield pd
    await pd.stop()


def config(home: Path, target: Target, pd: FakePagerDuty, *, for_: str, idempotent: Any) -> Path:
    port = target.url.rsplit(":", 1)[1]
    file = rules(home).group("crash", "500ms")
    file.http(
        "health",
        f"http://127.0.0.1:{port}/health",
        for_=for_,
        action="rollback",
        severity="critical",
    )
    step = {"kind": "http", "retries": 0, "timeout": "5s"}
    first = {**step, "name": "call-rollback", "url": f"{target.url}/rollback"}
    if idempotent is not None:
        first["idempotent"] = idempotent
    confirm = {**step, "name": "confirm", "url": f"{target.url}/confirm"}
    return config_file(
        home, file, plans={"p": {"steps": [first, confirm]}}, default_plan="p",
        http_allowed_hosts=["127.0.0.1"], tick="200ms",
        confirm_for="0",  # ends at rolled_back: confirmation has its own tests
        notify=paging(pd.url),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def watchdog(
    home: Path, cfg: Path, db: Path, crash_at: str | None = None
) -> AsyncIterator[WatchdogServer]:
    settings = {"config": str(cfg), "store_url": f"sqlite:///{db}"}
    if crash_at:
        settings["test_crash_at"] = crash_at
    with contextlib.ExitStack() as stack:
        # In a thread: start_watchdog blocks while it waits, and the fakes live on this loop.
        server = await asyncio.to_thread(stack.enter_context, start_watchdog(home, settings))
        try:
            yield server
        finally:
            await asyncio.to_thread(stack.close)


async def api(server: WatchdogServer, method: str, path: str, **kw: Any) -> httpx.Response:
    return await world.api(server.url, method, path, token=server.token, **kw)


async def poll(check: Callable[[], Any], what: str, timeout: float = HANG_GUARD) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check() if asyncio.iscoroutinefunction(check) else check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def window_detail(server: WatchdogServer, window_id: str) -> dict[str, Any]:
    return dict((await api(server, "GET", f"/api/v1/deployments/{window_id}")).json())


async def open_window(server: WatchdogServer) -> str:
    body = {
        "service": "api",
        "environment": "prod",
        "version": "v2",
        "previous_version": "v1",
        "window": "10m",
    }
    response = await api(server, "POST", "/api/v1/deployments", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


CASES = {
    # point: (idempotent flag of call-rollback, expected phase, requests to /rollback)
    "decided": (None, "rolled_back", 1),
    "claimed": (None, "rolled_back", 1),
    "before_step:confirm": (None, "rolled_back", 1),
    # The plan declares the request idempotent: re-sent, same key.
    "step_returned:call-rollback": (True, "rolled_back", 2),
    # The rollback runs beside the delivery, so the kill may land while call-rollback is
    # in doubt: then it is re-sent with the same key (1 or 2 requests, performed once).
    "delivered:pagerduty": (True, "rolled_back", None),
}


@pytest.mark.parametrize("point", list(CASES))
async def test_kill_9_at_each_point_then_restart_rolls_back_once(
    tmp_path: Path, target: Target, pagerduty: FakePagerDuty, point: str
) -> None:
    idempotent, phase, sent = CASES[point]
    cfg = config(tmp_path, target, pagerduty, for_="0s", idempotent=idempotent)
    db = tmp_path / "wd.db"
    async with watchdog(tmp_path / "first", cfg, db, crash_at=point) as first:
        window_id = await open_window(first)
        await poll(lambda: first.proc.poll() is not None, f"the crash at {point}")
        assert first.proc.returncode == -signal.SIGKILL
    async with watchdog(tmp_path / "second", cfg, db) as second:

        async def finished() -> dict[str, Any] | None:
            detail = await window_detail(second, window_id)
            return detail if detail["window"]["phase"] in TERMINAL else None

        detail = await poll(finished, "the window to finish")
        await poll(
            lambda: pagerduty.incidents.get(f"watchdog-{window_id}") == "resolved", "PD resolve"
        )
    assert detail["window"]["phase"] == phase, detail
    key = f"{window_id}:call-rollback"
    received = target.requests["/rollback"]
    assert received == [key] * (sent or len(received)) and 1 <= len(received) <= 2
    assert target.performed == {"/rollback": [key], "/confirm": [f"{window_id}:confirm"]}
    assert list(pagerduty.incidents) == [f"watchdog-{window_id}"]
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("rollback_started") == 1 and kinds.count("rollback_succeeded") == 1


@pytest.mark.parametrize("idempotent", [False, None])  # an http step is not, unless declared
async def test_a_step_in_doubt_that_is_not_idempotent_is_not_repeated(
    tmp_path: Path, target: Target, pagerduty: FakePagerDuty, idempotent: bool | None
) -> None:
    cfg = config(tmp_path, target, pagerduty, for_="0s", idempotent=idempotent)
    db = tmp_path / "wd.db"
    async with watchdog(
        tmp_path / "first", cfg, db, crash_at="step_returned:call-rollback"
    ) as first:
        window_id = await open_window(first)
        await poll(lambda: first.proc.poll() is not None, "the crash")
    async with watchdog(tmp_path / "second", cfg, db) as second:

        async def failed() -> dict[str, Any] | None:
            detail = await window_detail(second, window_id)
            return detail if detail["window"]["phase"] in TERMINAL else None

        detail = await poll(failed, "the window to finish")
        await poll(lambda: len(pagerduty.events) >= 1, "PagerDuty told")
    assert detail["window"]["phase"] == "rollback_failed"
    failed_event = [e for e in detail["events"] if e["kind"] == "rollback_failed"]
    assert len(failed_event) == 1 and "verify manually" in failed_event[0]["message"]
    assert target.requests == {"/rollback": [f"{window_id}:call-rollback"]}  # once, never /confirm
    assert list(pagerduty.incidents) == [f"watchdog-{window_id}"]


def instant(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_for_progress_survives_kill_9(
    tmp_path: Path, target: Target, pagerduty: FakePagerDuty
) -> None:
    cfg = config(tmp_path, target, pagerduty, for_="8s", idempotent=None)
    db = tmp_path / "wd.db"
    async with watchdog(tmp_path / "first", cfg, db) as first:
        window_id = await open_window(first)

        async def pending() -> str | None:
            rules = (await window_detail(first, window_id))["rules"]
            return next((r["pending_since"] for r in rules if r["pending_since"]), None)

        since = await poll(pending, "the rule to be pending")
        await asyncio.sleep(3)  # three seconds of `for` progress to keep
        os.killpg(first.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(first.proc.wait, 10)
    async with watchdog(tmp_path / "second", cfg, db) as second:

        async def fired() -> dict[str, Any] | None:
            detail = await window_detail(second, window_id)
            return detail if detail["window"]["phase"] in TERMINAL else None

        detail = await poll(fired, "the rollback")
    # A restart that lost the state would judge from a fresh (ok) state and journal a
    # second rule_pending, with `for` counted again from the restart.
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("rule_pending") == 1, "the restart must not start the `for` over"
    firing = next(e for e in detail["events"] if e["kind"] == "rule_firing")
    # `for: 8s` counted across the restart, less the scheduler's slack on due times
    assert instant(firing["at"]) >= instant(since) + 8 - DUE_SLACK
    assert target.performed["/rollback"] == [f"{window_id}:call-rollback"]
