"""Windows driven into every terminal state through the real app (fake clock, scripted
values per service, a recording executor), for the status page's screenshot tests.

Each scenario runs to its end before the next opens, on one app and one store, so the
page can show them all. The states issue 21 adds (inconclusive, expired while held,
would have rolled back) are written the way the engine writes them: the phase moved by
the store's compare-and-set and the window's ending event journaled with its data,
before the window's time runs out, so whichever code ends windows does not race it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes import RecordingExecutor
from tests.rules import ERRORS_5XX, REQUESTS, rules
from watchdog.actions.spec import Plan
from watchdog.app import Parts
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    Deployment,
    EventKind,
    Sample,
    Series,
    Window,
    WindowPhase,
)
from watchdog.rulefile.judge import ROLE
from watchdog.sources import SampleContext

RATIO_5XX = """\
sum(rate(http_requests_total{service="{{ service }}",code=~"5.."}[1m]))
/ sum(rate(http_requests_total{service="{{ service }}"}[1m]))"""
P99 = """\
histogram_quantile(0.99, sum by (le)
(rate(http_request_duration_seconds_bucket{service="{{ service }}"}[1m])))"""
RUNBOOK = {"runbook_url": "https://runbooks.example.com/api/5xx"}
RULES = (
    rules(Path())
    .group("api", "15s")
    .prometheus("http-5xx-ratio", RATIO_5XX.replace("\n", " "), above=0.05, for_="1m",
                action="rollback", severity="critical", labels=RUNBOOK)
    .prometheus("p99-latency", P99.replace("\n", " "), above=0.8, for_="1m", action="rollback")
    .text()
)  # fmt: skip
PLAN = Plan.model_validate(
    {
        "steps": [
            {
                "name": "undo",
                "kind": "command",
                "argv": ["kubectl", "-n", "prod", "rollout", "undo", "deployment/{{ service }}"],
                "retries": 0,
            }
        ]
    }
)
START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
Script = Callable[[str, float], Sample]


def healthy(rule: str, at: float) -> Sample:
    """A little noise around a healthy level, the same on every run."""
    wobble = 1 + 0.25 * math.sin(at / 47.0) + 0.1 * math.sin(at / 13.0)
    return Sample.of((0.004 if rule == "http-5xx-ratio" else 0.21) * wobble)


def bad_from(since: float, level: float, after: float | None = None) -> Script:
    """5xx at ``level`` from ``since`` (then ``after`` once set by the scenario)."""

    def script(rule: str, at: float) -> Sample:
        if rule != "http-5xx-ratio" or at < since:
            return healthy(rule, at)
        return Sample.of(level * (1 + 0.05 * math.sin(at / 11.0)))

    return script


@dataclass
class BySource:
    """Answers each (service, rule) from its script; healthy when unscripted."""

    scripts: dict[str, Script] = field(default_factory=dict)

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        script = self.scripts.get(ctx.variables.get("service", ""), healthy)
        return script(rule.name, ctx.at)

    async def close(self) -> None:
        return None


@dataclass
class States:
    """Drives windows through the app; ``made`` maps a state's name to its window id."""

    parts: Parts
    clock: FakeClock
    source: BySource
    executor: RecordingExecutor
    made: dict[str, str] = field(default_factory=dict)

    async def open(self, service: str, version: str, **kw: Any) -> Window:
        deployment = Deployment(service, "production", version, f"v{int(version[1:]) - 1}")
        return await self.parts.windows.open_window(
            deployment, window_seconds=600, actor="ci", **kw
        )

    async def run_until(
        self, window: Window, phases: Collection[WindowPhase], limit: float = 900
    ) -> Window:
        for _ in range(int(limit / 5)):
            got = await self.parts.store.get_window(window.id)
            assert got is not None
            if got.phase in phases:
                return got
            await self.parts.engine.tick()
            await self.parts.engine.drain()
            self.clock.advance(5)
        raise AssertionError(f"{window.id} never reached {phases}")

    async def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds / 5)):
            await self.parts.engine.tick()
            await self.parts.engine.drain()
            self.clock.advance(5)

    async def end(self, window: Window, phase: WindowPhase, kind: EventKind, **data: Any) -> None:
        """End ``window`` in ``phase`` as the engine does: compare-and-set, then journal
        (unless the engine ended it so already)."""
        now = self.clock.now()
        moved = await self.parts.store.set_phase(
            window.id, phase, at=now, expected=EVALUATING_PHASES
        )
        if not moved:
            got = await self.parts.store.get_window(window.id)
            assert got is not None and got.phase is phase, f"{window.id} ended otherwise"
            return
        ended = window.with_phase(phase, now)
        text = f"window {phase.value.replace('_', ' ')}"
        await self.parts.journal.record(ended, kind, text, at=now, data=data)
        self.parts.engine.forget(window.id)

    async def build(self) -> None:
        """Every terminal state, one service each."""
        await self.passed()
        await self.recovered()
        await self.failed()
        await self.ineffective()
        await self.inconclusive()
        await self.expired_while_held()
        await self.would_have_rolled_back()
        await self.live()

    async def passed(self) -> None:
        w = await self.open("cart", "v8")
        self.made["passed"] = (await self.run_until(w, {WindowPhase.PASSED})).id

    async def recovered(self) -> None:
        w = await self.open("api", "v3")
        self.source.scripts["api"] = bad_from(self.clock.now() + 150, 0.29)
        await self.run_until(w, {WindowPhase.CONFIRMING})
        self.source.scripts["api"] = bad_from(self.clock.now() + 40, 0.0021)
        self.made["recovered"] = (await self.run_until(w, {WindowPhase.ROLLED_BACK})).id

    async def failed(self) -> None:
        w = await self.open("search", "v12")
        self.source.scripts["search"] = bad_from(self.clock.now() + 120, 0.41)
        self.executor.failures.append(
            PermanentError('kubectl exited 1: Error from server (Forbidden): deployments "search"')
        )
        self.made["rollback_failed"] = (await self.run_until(w, {WindowPhase.ROLLBACK_FAILED})).id

    async def ineffective(self) -> None:
        w = await self.open("checkout", "v5")
        self.source.scripts["checkout"] = bad_from(self.clock.now() + 90, 0.31)
        await self.run_until(w, {WindowPhase.CONFIRMING})
        self.source.scripts["checkout"] = bad_from(0, 0.12)
        done = await self.run_until(w, {WindowPhase.ROLLBACK_INEFFECTIVE})
        self.made["rollback_ineffective"] = done.id

    async def inconclusive(self) -> None:
        w = await self.open("billing", "v21")
        blind = Sample.failed("Prometheus: connect to 10.0.3.7:9090 refused")
        self.source.scripts["billing"] = lambda rule, at: (
            blind if rule == "http-5xx-ratio" else healthy(rule, at)
        )
        await self.run_for(540)
        gap = {"rule": "http-5xx-ratio", "source": "prometheus", "judged": 0,
               "evaluations": 36, "cause": "blind", "reason": "Prometheus did not answer"}  # fmt: skip
        await self.end(w, WindowPhase.INCONCLUSIVE, EventKind.WINDOW_INCONCLUSIVE, unjudged=[gap])
        self.made["inconclusive"] = w.id

    async def expired_while_held(self) -> None:
        w = await self.open("payments", "v7")
        await self.run_for(60)
        await self.parts.windows.hold(w.id, actor="alice", reason="migration running")
        self.source.scripts["payments"] = bad_from(self.clock.now() + 60, 0.18)
        await self.run_for(480)
        await self.end(
            w,
            WindowPhase.EXPIRED_WHILE_HELD,
            EventKind.WINDOW_EXPIRED_WHILE_HELD,
            firing=["http-5xx-ratio"],
            holder="alice",
            actor="alice",
        )
        self.made["expired_while_held"] = w.id

    async def would_have_rolled_back(self) -> None:
        w = await self.open("web", "v4", shadow=True)
        self.source.scripts["web"] = bad_from(self.clock.now() + 200, 0.09)
        await self.run_for(480)
        await self.end(
            w,
            WindowPhase.WOULD_HAVE_ROLLED_BACK,
            EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
            would_roll_back="rule:http-5xx-ratio",
            rule="http-5xx-ratio",
        )
        self.made["would_have_rolled_back"] = w.id

    async def live(self) -> None:
        """Left open: a rule breaching, pending its ``for`` (the front page shows it)."""
        w = await self.open("auth", "v2")
        self.source.scripts["auth"] = bad_from(self.clock.now() + 60, 0.09)
        await self.run_for(100)
        self.made["live"] = w.id


JUDGE_RULES = (
    rules(Path())
    .group("api", "15s")
    .judge("api-5xx-judged", ERRORS_5XX, REQUESTS, factor=1.5, action="rollback", labels=RUNBOOK)
    .text()
)


@dataclass
class Counters:
    """Request counters at 100/s: 1 % fail, ``fault_rate`` between ``fault_at`` and
    ``fixed_at`` (seconds after ``start``)."""

    start: float
    fault_at: float = float("inf")
    fixed_at: float = float("inf")
    fault_rate: float = 0.03

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        if not ctx.live:  # the baseline probe, an hour before: 1 %
            return Sample.of(Series(3600.0, {ROLE: "errors"}), Series(360_000.0, {ROLE: "total"}))
        t = ctx.at - self.start
        bad = max(0.0, min(t, self.fixed_at) - self.fault_at)
        errors = 100 * (0.01 * (t - bad) + self.fault_rate * bad)
        return Sample.of(
            Series(round(errors), {ROLE: "errors", "status": "5xx"}),
            Series(round(errors), {ROLE: "total", "status": "5xx"}),
            Series(round(100 * t - errors), {ROLE: "total", "status": "2xx"}),
        )

    async def close(self) -> None:
        return None


async def judged(parts: Parts, clock: FakeClock, counters: Counters) -> str:
    """A judge rule rolls ``orders`` back; the restored version is watched to recovery."""
    deployment = Deployment("orders", "production", "v9", "v8")
    w = await parts.windows.open_window(deployment, window_seconds=1200, actor="ci")
    counters.fault_at = clock.now() - counters.start + 240
    states = States(parts, clock, BySource(), RecordingExecutor())
    await states.run_until(w, {WindowPhase.CONFIRMING}, limit=1200)
    counters.fixed_at = clock.now() - counters.start
    done = {WindowPhase.ROLLED_BACK, WindowPhase.ROLLBACK_INEFFECTIVE}
    return (await states.run_until(w, done, limit=1200)).id
