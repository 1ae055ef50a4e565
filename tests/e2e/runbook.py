"""Helpers for the runbook e2e tests: the watchdog App in-process on a real clock, the
shipped rules with their durations compressed, and a rollback endpoint that counts calls.

Each test opens a real window through the WindowService and polls the window's detail
until the event it waits for; the caps (``HANG_GUARD``) only stop a hung run, they are
not a guess at how long a busy machine takes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from examples.stack import wait_for_query
from tests.fakes import serving
from tests.shipped import shipped, shipped_names, write_rules
from tests.world import started
from watchdog.app import App
from watchdog.foundation.model import Deployment, Event, EventKind, WindowPhase
from watchdog.lifecycle.control import WindowDetail
from watchdog.settings import Settings

FAST = {"for": "1s", "interval": "500ms", "warmup": "1s", "restart_every": "10s"}
HANG_GUARD = 180.0  # seconds: only a hung run waits this long for an event


def pack(*files: str, **local: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rule of the shipped ``files`` with ``for: 1s``; ``local[name]`` adds
    where things live here (url, path) or another compressed ``for``."""
    out = []
    for file in files:
        for name in shipped_names(file):
            out.append(shipped(file, name, **{**FAST, **local.get(name, {})}))
    return out


@dataclass
class Receiver:
    """The rollback target: records every POST /rollback."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(
            {"body": await request.json(), "key": request.headers.get("Idempotency-Key")}
        )
        return web.json_response({"ok": True})


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP endpoint standing in for the deploy system's rollback API."""
    rec = Receiver()
    async with serving(web.post("/rollback", rec._handle)) as url:
        rec.port = int(url.rsplit(":", 1)[1])
        yield rec


@asynccontextmanager
async def watchdog(
    tmp_path: Path, rules: list[dict[str, Any]], rollback_port: int, **settings: Any
) -> AsyncIterator[App]:
    """The App with ``rules``, a one-step HTTP rollback plan, a SQLite store."""
    plan = {
        "steps": [
            {
                "name": "rollback",
                "kind": "http",
                "url": f"http://127.0.0.1:{rollback_port}/rollback",
                "json": {"version": "{{ previous_version }}"},
            }
        ]
    }
    values = Settings(
        rules=[write_rules(tmp_path / "rules.yml", rules)],
        store_url=SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"),
        listen_port=0,
        tick=0.2,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"deploy": plan},
        default_plan="deploy",
        http_allowed_hosts=["127.0.0.1"],
        **{"prometheus_scrape_interval": 1.0, **settings},
    )
    async with started(values) as app:
        yield app


async def open_window(app: App, seconds: float, service: str = "demo") -> str:
    """Open a window for a deploy of ``service`` v2 (previous v1)."""
    assert app.parts is not None
    deployment = Deployment(service, "e2e", "v2", previous_version="v1")
    window = await app.parts.windows.open_window(deployment, window_seconds=seconds, actor="ci")
    return window.id


async def until(
    app: App, window_id: str, done: Callable[[WindowDetail], bool], timeout: float = HANG_GUARD
) -> WindowDetail:
    """Poll the window's detail until ``done`` holds or ``timeout`` passes."""
    assert app.parts is not None
    deadline = time.monotonic() + timeout
    while True:
        detail = await app.parts.windows.detail(window_id)
        if done(detail) or time.monotonic() > deadline:
            return detail
        await asyncio.sleep(0.2)


def phase_is(*phases: WindowPhase) -> Callable[[WindowDetail], bool]:
    """``done`` for :func:`until`: the window reached one of ``phases``."""
    return lambda d: d.window.phase in phases


def fired(rule: str) -> Callable[[WindowDetail], bool]:
    """``done`` for :func:`until`: ``rule`` has a rule_firing event."""
    return lambda d: any(e.kind is EventKind.RULE_FIRING and e.rule == rule for e in d.events)


def all_ok(detail: WindowDetail) -> bool:
    """``done`` for :func:`until`: every rule was evaluated and reads ok."""
    return all(r.last_eval_at is not None and r.verdict.value == "ok" for r in detail.rules)


def firing_rules(detail: WindowDetail) -> set[str]:
    """Every rule that fired in the window."""
    return {e.rule or "" for e in detail.events if e.kind is EventKind.RULE_FIRING}


def kinds(events: list[Event]) -> list[EventKind]:
    """The journal's event kinds, in order."""
    return [e.kind for e in events]


async def assert_passes_quietly(app: App, rec: Receiver, seconds: float = 4.0) -> WindowDetail:
    """Open a healthy window: it passes, nothing fired, every rule is ok, no rollback."""
    window_id = await open_window(app, seconds)
    detail = await until(app, window_id, phase_is(WindowPhase.PASSED), seconds + HANG_GUARD)
    assert detail.window.phase is WindowPhase.PASSED, [e.message for e in detail.events]
    assert firing_rules(detail) == set()
    not_ok = {r.name: (r.verdict.value, r.reason) for r in detail.rules if r.verdict.value != "ok"}
    assert not_ok == {}
    assert rec.calls == []
    return detail


async def scraped_since(app: App, since: float) -> None:
    """Wait until Prometheus has scraped every target after ``since``.

    A window's queries read only its own evidence (ranges clamped to its age): a counter
    whose last pre-fault sample predates the window shows no increase once the window's
    range moves past it. On a busy machine scrapes slip, so the fault must wait for a
    healthy sample inside the window, not for a guessed number of seconds.
    """
    assert app.parts is not None
    if not any(r.source in ("prometheus", "judge") for r in app.parts.engine.rules.current.rules):
        return
    query, after = "min(timestamp(up))", lambda v: bool(v) and v[0] > since
    await asyncio.to_thread(wait_for_query, app.settings.prometheus_url, query, after, HANG_GUARD)


async def assert_fires(
    app: App, rec: Receiver, rule: str, action: str, fault: Callable[[], Any], seconds: float = 600
) -> WindowDetail:
    """Open a window, let every rule read healthy once (and Prometheus scrape inside the
    window), inject ``fault``; ``rule`` fires and the window does what ``action`` says
    (rollback once, wait for approval, tell). ``seconds`` only has to outlive the test."""
    window_id = await open_window(app, seconds)
    healthy = await until(app, window_id, all_ok)
    assert all_ok(healthy), [(r.name, r.verdict.value, r.reason) for r in healthy.rules]
    await scraped_since(app, healthy.window.started_at)
    result = fault()
    if asyncio.iscoroutine(result):
        await result
    expected = {
        "rollback": phase_is(WindowPhase.ROLLED_BACK),
        "approve": phase_is(WindowPhase.AWAITING_APPROVAL),
        "notify": fired(rule),
    }[action]
    detail = await until(app, window_id, expected)
    assert expected(detail), [e.message for e in detail.events]
    assert rule in firing_rules(detail)
    calls = [c for c in rec.calls if str(c["key"]).startswith(window_id)]
    if action == "rollback":
        assert len(calls) == 1 and calls[0]["body"] == {"version": "v1"}
        assert kinds(detail.events).count(EventKind.ROLLBACK_SUCCEEDED) == 1
    else:
        assert calls == []
        if action == "notify":
            assert detail.window.phase is WindowPhase.WATCHING
        else:
            assert EventKind.APPROVAL_NEEDED in kinds(detail.events)
    return detail
