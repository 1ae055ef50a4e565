"""Grace periods, holds in them, approvals, acknowledgements, escalation and "watchdog
blind", through App.build with a gated fake clock and scripted sources (tests/fakes.py). Nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import PLAN
from tests.rules import rules
from tests.world import World as AppWorld
from tests.world import app_settings
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import Conflict
from watchdog.foundation.model import Deployment, EventKind, Sample, Window, WindowPhase
from watchdog.lifecycle.escalation import Escalator
from watchdog.lifecycle.opening import WindowOpener
from watchdog.lifecycle.windows import WindowService


class GatedClock(FakeClock):
    """A fake clock whose ``sleep`` waits for the test to open the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.sleeping.set()
        await self.gate.wait()
        self.advance(seconds)


class World(AppWorld):
    clock: GatedClock

    @property
    def escalator(self) -> Escalator:
        assert self.parts.notify.escalator is not None
        return self.parts.notify.escalator

    async def open(self, plan: str | None = None) -> Window:
        d = Deployment("api", "prod", "v2", previous_version="v1", plan=plan)
        return await self.windows.open_window(d, window_seconds=600, actor="test")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    file = (
        rules(tmp_path)
        .prometheus(
            "errors", "errors", above=0.05, action="rollback", severity="critical", grace="60s"
        )
        .prometheus("oom", "oom", above=0, action="notify", severity="critical")
    )
    plans = {"default": PLAN, "risky": PLAN.model_copy(update={"data_loss_risk": True})}
    settings = app_settings(
        tmp_path,
        file,
        plans=plans,
        default_plan="default",
        window=300,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        notify={"blind_after": 2, "escalate_after": 300},
    )
    clock = GatedClock()
    async with World.of(settings, clock=clock) as w:
        assert w.parts.notify.escalator is not None
        yield w
        clock.gate.set()


async def test_grace_announces_waits_then_rolls_back_once(world: World) -> None:
    w = await world.open()
    world.source.values["errors"] = Sample.of(0.5)
    await world.engine.tick()
    await world.clock.sleeping.wait()
    scheduled = await world.events(w, EventKind.ROLLBACK_SCHEDULED)
    assert len(scheduled) == 1 and "rolling back in 60s" in scheduled[0].message
    assert world.executor.calls == []  # nothing acts during the grace period
    world.clock.gate.set()
    await world.engine.drain()
    assert world.clock.slept[0] == 60
    assert world.executor.calls == [("redeploy", w.id)]
    assert await world.phase(w) is WindowPhase.ROLLED_BACK


async def test_hold_during_grace_vetoes_the_rollback(world: World) -> None:
    w = await world.open()
    world.source.values["errors"] = Sample.of(0.5)
    await world.engine.tick()
    await world.clock.sleeping.wait()
    await world.windows.hold(w.id, actor="slack:U1", reason=None)
    world.clock.gate.set()
    await world.engine.drain()
    assert world.executor.calls == []
    assert await world.phase(w) is WindowPhase.HELD
    suppressed = await world.events(w, EventKind.ACTION_SUPPRESSED)
    assert [e.message for e in suppressed] == [
        "errors: held during the grace period, not rolling back"
    ]


async def test_manual_rollback_during_grace_still_runs_once(world: World) -> None:
    w = await world.open()
    world.source.values["errors"] = Sample.of(0.5)
    await world.engine.tick()
    await world.clock.sleeping.wait()
    await world.windows.rollback(w.id, actor="slack:U1", reason=None)
    world.clock.gate.set()
    await world.engine.drain()
    assert world.executor.calls == [("redeploy", w.id)]


async def test_approve_runs_a_risky_plan_with_the_approver_recorded(world: World) -> None:
    world.clock.gate.set()
    w = await world.open(plan="risky")
    assert await world.windows.needs_approval(w.id)
    await world.windows.approve(w.id, actor="slack:UBOSS", reason=None)
    await world.engine.drain()
    assert world.executor.calls == [("redeploy", w.id)]
    started = await world.events(w, EventKind.ROLLBACK_STARTED)
    assert started[0].data["approved_by"] == "slack:UBOSS"
    assert len(await world.events(w, EventKind.APPROVED)) == 1
    with pytest.raises(Conflict):
        await world.windows.approve(w.id, actor="slack:UBOSS", reason=None)
    assert len(world.executor.calls) == 1


async def test_default_risky_plan_needs_approval_for_rollback_rules(world: World) -> None:
    world.clock.gate.set()
    parts = world.windows.parts
    opener = WindowOpener(
        parts, default_window=300, plans={"default": PLAN}, default_plan="default"
    )
    windows = WindowService(parts, opener)
    d = Deployment("api", "prod", "v2", previous_version="v1")
    w = await windows.open_window(d, window_seconds=600, actor="test")
    assert not await windows.needs_approval(w.id)


async def test_unacknowledged_critical_firing_escalates_once(world: World) -> None:
    world.clock.gate.set()
    escalator = world.escalator
    w = await world.open()
    world.source.values["oom"] = Sample.of(2)
    await world.engine.tick()
    await world.engine.drain()
    assert await escalator.check() == 0
    world.clock.advance(299)
    assert await escalator.check() == 0
    world.clock.advance(1)
    assert await escalator.check() == 1
    world.clock.advance(600)
    assert await escalator.check() == 0
    escalated = await world.events(w, EventKind.ESCALATED)
    assert len(escalated) == 1 and escalated[0].rule == "oom"


async def test_acknowledged_firing_does_not_escalate(world: World) -> None:
    world.clock.gate.set()
    escalator = world.escalator
    w = await world.open()
    world.source.values["oom"] = Sample.of(2)
    await world.engine.tick()
    await world.engine.drain()
    await world.windows.acknowledge(w.id, actor="slack:U1")
    world.clock.advance(900)
    assert await escalator.check() == 0
    assert await world.events(w, EventKind.ESCALATED) == []


async def test_blind_is_told_once_per_outage_and_recovery_once(world: World) -> None:
    world.clock.gate.set()
    w = await world.open()
    world.source.values["oom"] = Sample.failed("connection refused")
    for _ in range(5):
        await world.engine.tick()
        await world.engine.drain()
        world.clock.advance(10)
    blind = await world.events(w, EventKind.WATCHDOG_BLIND)
    assert len(blind) == 1
    assert blind[0].message.startswith(
        "watchdog blind: Prometheus cannot answer (connection refused)"
    )
    assert blind[0].data["severity"] == "warning" and blind[0].data["rule"] == "oom"
    world.source.values["oom"] = Sample.of(0)
    for _ in range(3):
        await world.engine.tick()
        await world.engine.drain()
        world.clock.advance(10)
    assert len(await world.events(w, EventKind.WATCHDOG_SIGHTED)) == 1
    assert len(await world.events(w, EventKind.WATCHDOG_BLIND)) == 1
