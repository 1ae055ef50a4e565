"""A judge rule in the app built through App.build (fake clock, scripted counters at the
Prometheus seam, SQLite store): the baseline is captured at open, healthy traffic never
acts, a regression rolls back exactly once, and the window's detail carries the
evidence. Nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import PLAN
from tests.rules import ERRORS_5XX, REQUESTS, rules
from tests.world import World as AppWorld
from tests.world import app_settings
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, EventKind, Sample, Series, WindowPhase
from watchdog.rulefile.judge import ROLE
from watchdog.sources import SampleContext


@dataclass
class Counters:
    """100 requests/s; 1 % fail until ``fault_at``, then ``fault_rate``."""

    clock: FakeClock
    start: float
    fault_at: float = float("inf")
    fault_rate: float = 0.10
    calls: list[bool] = field(default_factory=list)

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        self.calls.append(ctx.live)
        if not ctx.live:  # the baseline probe: an hour before, 1 %
            return Sample.of(Series(3600.0, {ROLE: "errors"}), Series(360_000.0, {ROLE: "total"}))
        t = ctx.at - self.start
        healthy = min(t, self.fault_at)
        bad = max(0.0, t - self.fault_at)
        errors = 100 * (0.01 * healthy + self.fault_rate * bad)
        total = 100 * t
        return Sample.of(
            Series(round(errors), {ROLE: "errors", "status": "5xx"}),
            Series(round(errors), {ROLE: "total", "status": "5xx"}),
            Series(round(total - errors), {ROLE: "total", "status": "2xx"}),
        )

    async def close(self) -> None:
        return None


class World(AppWorld):
    counters: Counters  # what the judge rule reads (set by the fixture)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    counters = Counters(clock, clock.now())
    file = rules(tmp_path).group("api", "15s")
    file.judge("api-5xx-judged", ERRORS_5XX, REQUESTS, factor=1.5, action="rollback")
    settings = app_settings(
        tmp_path, file, plans={"default": PLAN}, default_plan="default",
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
    )  # fmt: skip
    async with World.of(settings, clock=clock, sources={"prometheus": counters}) as w:
        w.counters = counters
        yield w


DEPLOY = Deployment("api", "production", "v2", previous_version="v1")


async def test_healthy_traffic_is_watched_with_evidence_and_never_acts(world: World) -> None:
    w = await world.windows.open_window(DEPLOY, window_seconds=600, actor="test")
    assert world.counters.calls[0] is False  # the baseline was read at open
    await world.run_for(300)
    assert world.executor.calls == []
    detail = await world.windows.detail(w.id)
    rule = detail.rules[0]
    assert rule.evidence is not None and rule.evidence["baseline"] == pytest.approx(0.01)
    assert rule.evidence["requests"] > 20_000 and rule.verdict.value == "ok"
    assert rule.threshold.startswith("judge: limit 1.")


async def test_a_regression_rolls_back_once_and_says_why(world: World) -> None:
    world.counters.fault_at = 120.0
    w = await world.windows.open_window(DEPLOY, window_seconds=1800, actor="test")
    await world.run_for(600)
    final = await world.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLED_BACK
    assert world.executor.calls == [("redeploy", w.id)]
    events = await world.store.list_events(w.id)
    firing = [e for e in events if e.kind is EventKind.RULE_FIRING]
    assert len(firing) == 1
    assert "requests bad" in firing[0].message and "baseline 1%" in firing[0].message
    assert firing[0].data["threshold"].startswith("judge: limit")
    assert firing[0].at - w.started_at < 300  # within three minutes of the fault
