"""Small, honest fakes shared by tests: an in-memory Controller behind the real web app,
a scripted source and a recording executor for the app's seams.

Phases move as the Controller protocol says and terminal windows refuse actions; the
real engine has its own end-to-end tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.spec import Plan
from watchdog.foundation.errors import Conflict, NotFound
from watchdog.foundation.model import (
    Deployment,
    Event,
    EventKind,
    Sample,
    Verdict,
    Window,
    WindowPhase,
    new_id,
)
from watchdog.lifecycle.control import RuleView, WindowDetail
from watchdog.sources import SampleContext
from watchdog.web.server import build_web_app

TOKEN = "s3cret-token-for-tests"
BASE_URL = "http://watchdog.example"
MAX_BODY = 64 * 1024
NOW = 1_800_000_000.0

PLAN = Plan.model_validate(
    {"steps": [{"name": "redeploy", "kind": "command", "argv": ["true"], "retries": 2}]}
)


@dataclass
class ScriptedSource:
    """Answers each rule's query from a mutable table; records every call.

    ``values["errors"]`` is what rule ``errors`` reads live, ``values["errors@baseline"]``
    what its baseline reads; a rule not in the table reads 0.
    """

    values: dict[str, Sample] = field(default_factory=dict)
    calls: list[tuple[str, float, bool]] = field(default_factory=list)

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        self.calls.append((rule.name, ctx.at, ctx.live))
        key = rule.name if ctx.live else f"{rule.name}@baseline"
        return self.values.get(key, Sample.of(0.0))

    async def close(self) -> None:
        return None


@dataclass
class RecordingExecutor:
    """Records each step it runs; raises ``failures`` in turn; waits on ``gate`` if set."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def run(self, step: Any, ctx: ActionContext) -> StepResult:
        self.calls.append((step.name, ctx.window.id))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return StepResult(output="ok")


class FakeController:
    """A dict of windows behind the Controller protocol."""

    def __init__(self) -> None:
        self.now = NOW
        self.windows: dict[str, Window] = {}
        self.events: dict[str, list[Event]] = {}
        self.calls: list[tuple[str, str, str, str | None]] = []
        self.explode: Exception | None = None
        self.rules = [
            RuleView(
                name="http-5xx-ratio",
                group="api",
                source="prometheus",
                action="rollback",
                severity="critical",
                threshold="> 0.05",
                for_seconds=60.0,
                interval_seconds=15.0,
                verdict=Verdict.PENDING,
                last_value=0.0712,
                worst_value=float("nan"),
                pending_since=NOW + 30,
                last_eval_at=NOW + 45,
                baseline=None,
                reason=None,
            )
        ]

    def record(
        self, window_id: str, kind: EventKind, message: str, rule: str | None = None
    ) -> None:
        """Append a journal entry."""
        journal = self.events.setdefault(window_id, [])
        journal.append(Event(window_id, self.now, kind, message, rule=rule, seq=len(journal) + 1))

    def _get(self, window_id: str) -> Window:
        if self.explode is not None:
            raise self.explode
        if window_id not in self.windows:
            raise NotFound(f"no window {window_id}")
        return self.windows[window_id]

    async def open_window(
        self,
        deployment: Deployment,
        *,
        window_seconds: float | None,
        actor: str,
        shadow: bool = False,
        confirm_for: float | None = None,
        force: bool = False,
    ) -> Window:
        if self.explode is not None:
            raise self.explode
        self.now += 1
        length = 1800.0 if window_seconds is None else window_seconds
        window = Window(
            new_id(),
            deployment,
            WindowPhase.WATCHING,
            self.now,
            self.now + length,
            self.now,
            shadow=shadow,
            confirm_for=300.0 if confirm_for is None else confirm_for,
        )
        self.windows[window.id] = window
        self.calls.append(("open", window.id, actor, None))
        self.record(window.id, EventKind.WINDOW_OPENED, f"watching {deployment.service}")
        return window

    async def detail(self, window_id: str) -> WindowDetail:
        return WindowDetail(
            self._get(window_id), list(self.rules), list(self.events.get(window_id, []))
        )

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        found = [
            w
            for w in self.windows.values()
            if (service is None or w.deployment.service == service)
            and (environment is None or w.deployment.environment == environment)
            and (phases is None or w.phase in phases)
        ]
        return sorted(found, key=lambda w: w.started_at, reverse=True)[:limit]

    async def _move(
        self,
        name: str,
        window_id: str,
        allowed: Collection[WindowPhase],
        to: WindowPhase,
        actor: str,
        reason: str | None,
    ) -> Window:
        window = self._get(window_id)
        if window.phase not in allowed:
            raise Conflict(f"cannot {name} a window that is {window.phase.value}")
        self.calls.append((name, window_id, actor, reason))
        moved = window.with_phase(to, self.now, reason)
        self.windows[window_id] = moved
        return moved

    async def hold(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        return await self._move(
            "hold", window_id, {WindowPhase.WATCHING}, WindowPhase.HELD, actor, reason
        )

    async def resume(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        return await self._move(
            "resume", window_id, {WindowPhase.HELD}, WindowPhase.WATCHING, actor, reason
        )

    async def rollback(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        evaluating = {WindowPhase.WATCHING, WindowPhase.HELD, WindowPhase.AWAITING_APPROVAL}
        return await self._move(
            "rollback", window_id, evaluating, WindowPhase.ROLLED_BACK, actor, reason
        )

    async def approve(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        return await self._move(
            "approve",
            window_id,
            {WindowPhase.AWAITING_APPROVAL},
            WindowPhase.ROLLED_BACK,
            actor,
            reason,
        )

    async def abort(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        evaluating = {WindowPhase.WATCHING, WindowPhase.HELD, WindowPhase.AWAITING_APPROVAL}
        return await self._move("abort", window_id, evaluating, WindowPhase.ABORTED, actor, reason)


@dataclass
class Harness:
    """What a test gets: the controller and readiness switch behind the app."""

    controller: FakeController = field(default_factory=FakeController)
    is_ready: bool | str = True  # a str: not ready, and why
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        Counter("watchdog_test_things", "a metric to find", registry=self.registry).inc()

    async def ready(self) -> bool | str:
        return self.is_ready

    def app(self, api_token: str | None = TOKEN) -> web.Application:
        return build_web_app(
            self.controller,
            api_token=api_token,
            base_url=BASE_URL,
            max_body_bytes=MAX_BODY,
            registry=self.registry,
            ready=self.ready,
            clock=lambda: self.controller.now,
        )


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Start ``app`` on a free loopback port; return the runner and its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@asynccontextmanager
async def serving(*routes: web.RouteDef) -> AsyncIterator[str]:
    """A local fake answering ``routes`` (``web.get(path, handler)``...) on a free
    loopback port, for as long as the block runs; yields its URL."""
    app = web.Application()
    app.add_routes(routes)
    runner, url = await serve(app)
    try:
        yield url
    finally:
        await runner.cleanup()
