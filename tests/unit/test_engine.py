"""The engine and the decision pipeline, built through App.build with a fake clock,
scripted sources and recording executors at the seams: windows, `for`, holds,
approvals, supersede, exactly-once. Nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import PLAN, RecordingExecutor, ScriptedSource
from tests.rules import rules
from tests.world import World, app_settings, world_of
from watchdog.foundation.errors import Conflict, TransientError
from watchdog.foundation.model import Deployment, EventKind, Sample, Verdict, Window, WindowPhase
from watchdog.lifecycle import schedule as schedule_module

__all__ = ["PLAN", "RecordingExecutor", "ScriptedSource", "World"]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    errors = 'errors{service="{{ service }}"}'
    summary = "5xx ratio {{ value }} for {{ service }}"
    latency = 'p95{service="{{ service }}"}'
    file = (
        rules(tmp_path)
        .prometheus("errors", errors, above=0.05, for_="30s", action="rollback", summary=summary)
        .prometheus(
            "latency",
            latency,
            threshold="> 2 * baseline",
            baseline={"offset": "1h"},
            action="approve",
        )
        .prometheus("oom", "oom", above=0, action="notify")
    )
    plans = {"default": PLAN, "risky": PLAN.model_copy(update={"data_loss_risk": True})}
    settings = app_settings(
        tmp_path, file, plans=plans, default_plan="default", window=300,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
    )  # fmt: skip
    async with world_of(settings) as w:
        yield w


def deploy(version: str = "v2", plan: str | None = None) -> Deployment:
    return Deployment("api", "production", version, previous_version="v1", plan=plan)


async def test_healthy_window_passes_without_rollback(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    await world.run_for(70)
    final = await world.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.PASSED
    assert world.executor.calls == []
    kinds = await world.kinds(w)
    assert kinds[0] is EventKind.WINDOW_OPENED
    assert EventKind.WINDOW_MIDPOINT in kinds and kinds[-1] is EventKind.WINDOW_PASSED
    # every rule evaluated at its 10 s interval: 6 evaluations each in 60 s
    assert sum(1 for name, _, live in world.source.calls if name == "errors" and live) == 6


async def test_breach_must_hold_for_then_rolls_back_exactly_once(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.2)
    await world.run_for(25)
    assert (await world.store.get_window(w.id)).phase is WindowPhase.WATCHING  # type: ignore[union-attr]
    await world.run_for(60)  # many more ticks while still breaching
    final = await world.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLED_BACK
    assert world.executor.calls == [("redeploy", w.id)]
    kinds = await world.kinds(w)
    assert kinds.count(EventKind.RULE_PENDING) == 1
    assert kinds.count(EventKind.RULE_FIRING) == 1
    assert kinds.count(EventKind.ROLLBACK_STARTED) == 1
    assert kinds.count(EventKind.ROLLBACK_SUCCEEDED) == 1
    started = [
        e for e in await world.store.list_events(w.id) if e.kind is EventKind.ROLLBACK_STARTED
    ]
    assert "5xx ratio 0.2 for api" in started[0].message
    assert started[0].data["actor"] == "rule:errors"


async def test_every_evaluation_adds_a_rule_point(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.01)
    await world.run_for(20)
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_for(10)
    detail = await world.windows.detail(w.id)
    errors = [(p.at - w.started_at, p.value, p.verdict) for p in detail.points["errors"]]
    assert errors == [
        (0.0, 0.01, Verdict.OK),
        (10.0, 0.01, Verdict.OK),
        (20.0, None, Verdict.INCONCLUSIVE),
    ]


async def test_inconclusive_never_rolls_back(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=120, actor="test")
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_for(130)
    final = await world.store.get_window(w.id)
    # It never rolls back, and it never says "passed" either: it could not judge errors.
    assert final is not None and final.phase is WindowPhase.INCONCLUSIVE
    assert final.reason is not None and "not judged for most of 2m" in final.reason
    assert "errors: blind" in final.reason and "check Prometheus" in final.reason
    assert world.executor.calls == []
    detail = await world.windows.detail(w.id)
    errors = next(r for r in detail.rules if r.name == "errors")
    assert errors.verdict is Verdict.INCONCLUSIVE and "connection refused" in (errors.reason or "")


async def test_hold_suppresses_then_resume_acts(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    await world.windows.hold(w.id, actor="alice", reason="investigating")
    world.source.values["errors"] = Sample.of(0.5)
    await world.run_for(60)
    assert world.executor.calls == []
    assert (await world.kinds(w)).count(EventKind.ACTION_SUPPRESSED) == 1
    await world.windows.resume(w.id, actor="alice", reason=None)
    await world.run_for(15)
    assert world.executor.calls == [("redeploy", w.id)]


async def test_approve_rule_waits_then_manual_rollback(world: World) -> None:
    world.source.values["latency@baseline"] = Sample.of(1.0)
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    assert w.baselines == {"latency": {"{}": 1.0}}
    world.source.values["latency"] = Sample.of(2.5)
    await world.run_for(20)
    now = await world.store.get_window(w.id)
    assert now is not None and now.phase is WindowPhase.AWAITING_APPROVAL
    assert world.executor.calls == []
    rolled = await world.windows.rollback(w.id, actor="slack:U1", reason="approved")
    assert rolled.phase is WindowPhase.ROLLING_BACK
    await world.engine.drain()
    assert world.executor.calls == [("redeploy", w.id)]
    with pytest.raises(Conflict):
        await world.windows.rollback(w.id, actor="slack:U2", reason="again")
    assert len(world.executor.calls) == 1


async def test_data_loss_plan_needs_approval_even_for_rollback_rules(world: World) -> None:
    w = await world.windows.open_window(deploy(plan="risky"), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.9)
    await world.run_for(45)
    now = await world.store.get_window(w.id)
    assert now is not None and now.phase is WindowPhase.AWAITING_APPROVAL
    assert world.executor.calls == []


async def test_notify_rule_never_acts(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    world.source.values["oom"] = Sample.of(3)
    await world.run_for(70)
    assert world.executor.calls == []
    assert EventKind.RULE_FIRING in await world.kinds(w)


async def test_concurrent_manual_rollbacks_run_the_plan_once(world: World) -> None:
    world.executor.gate = asyncio.Event()
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    results = await asyncio.gather(
        *(world.windows.rollback(w.id, actor=f"u{i}", reason=None) for i in range(10)),
        return_exceptions=True,
    )
    world.executor.gate.set()
    await world.engine.drain()
    assert sum(isinstance(r, Window) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 9
    assert world.executor.calls == [("redeploy", w.id)]


async def test_transient_failures_retry_then_permanent_marks_failed(world: World) -> None:
    world.executor.failures = [TransientError("503"), TransientError("503"), TransientError("503")]
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    await world.windows.rollback(w.id, actor="api", reason=None)
    await world.engine.drain()
    final = await world.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.ROLLBACK_FAILED
    assert len(world.executor.calls) == 3  # 1 attempt + 2 retries
    assert world.clock.slept == [1.0, 2.0]  # backoff, without sleeping
    action = await world.store.get_action(w.id, "rollback")
    assert action is not None and action.status.value == "failed"


async def test_new_deploy_supersedes_open_window(world: World) -> None:
    first = await world.windows.open_window(deploy("v2"), window_seconds=600, actor="test")
    second = await world.windows.open_window(deploy("v3"), window_seconds=600, actor="test")
    old = await world.store.get_window(first.id)
    assert old is not None and old.phase is WindowPhase.SUPERSEDED
    world.source.values["errors"] = Sample.of(0.9)
    await world.run_for(45)
    assert world.executor.calls == [("redeploy", second.id)]


async def test_rule_state_survives_a_restart(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.2)
    await world.run_for(20)  # pending since t0, not yet 30 s
    async with world.restart() as fresh:  # a new process on the same store
        await fresh.engine.tick()
        await fresh.engine.drain()
        world.clock.advance(10)
        await fresh.engine.tick()
        await fresh.engine.drain()
    # the `for` progress was kept: it fired 30 s after the first breach, not 30 s after restart
    assert world.executor.calls == [("redeploy", w.id)]


async def test_conflicts_on_terminal_windows(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    await world.windows.abort(w.id, actor="bob", reason="wrong service")
    for call in (
        world.windows.hold,
        world.windows.resume,
        world.windows.rollback,
        world.windows.abort,
    ):
        with pytest.raises(Conflict):
            await call(w.id, actor="bob", reason=None)


async def _tick(world: World, at: float) -> None:
    world.clock.advance(at - world.clock.now())
    await world.engine.tick()
    await world.engine.drain()


async def test_rules_keep_their_grid_when_ticks_jitter(world: World) -> None:
    """A tick a few ms early against the rule's grid still runs it (every 10 s, not 11)."""
    await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    start = world.clock.now()
    for at in (0.02, 10.0, 19.99, 30.05, 40.0):  # ticks a little late or early
        await _tick(world, start + at)
    times = [round(at - start, 2) for name, at, live in world.source.calls if name == "errors"]
    assert times == [0.02, 10.0, 19.99, 30.05, 40.0]
    await _tick(world, start + 49.0)  # 1 s early: not due yet
    await _tick(world, start + 50.0)
    await _tick(world, start + 95.0)  # fell behind: runs now, a new grid from here
    await _tick(world, start + 104.9)
    await _tick(world, start + 105.5)
    times = [round(at - start, 2) for name, at, live in world.source.calls if name == "errors"]
    assert times[5:] == [50.0, 95.0, 104.9]


async def test_a_new_window_names_the_default_plan_that_will_run(world: World) -> None:
    windows = world.windows  # the app's, with default_plan "default"
    opened = await windows.open_window(deploy(), window_seconds=60, actor="test")
    assert opened.deployment.plan == "default"
    detail = await windows.detail(opened.id)
    assert detail.window.deployment.plan == "default"
    first = (await world.store.list_events(opened.id))[0]
    assert first.kind is EventKind.WINDOW_OPENED and first.data["plan"] == "default"
    chosen = await windows.open_window(deploy("v3", plan="risky"), window_seconds=60, actor="t")
    assert chosen.deployment.plan == "risky"


async def test_a_burst_of_due_rules_is_spread_over_ticks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 windows opened at once: their 60 rules start at most 10 a tick (MIN_STARTS
    here), each on its own grid from then, and every rule still runs once per 10 s."""
    monkeypatch.setattr(schedule_module, "MIN_STARTS", 10)  # SPREAD x 6 rules/s = 9 < 10
    for i in range(20):
        d = Deployment(f"svc{i}", "production", "v2", previous_version="v1")
        await world.windows.open_window(d, window_seconds=600, actor="test")
    start, per_tick = world.clock.now(), []
    for second in range(60):
        before = len(world.source.calls)
        await _tick(world, start + second)
        per_tick.append(len(world.source.calls) - before)
    assert per_tick[:6] == [10] * 6  # the burst, spread over six ticks
    assert max(per_tick) == 10 and sum(per_tick) == 60 * 6  # every rule, every 10 s
    assert per_tick[10:16] == [10] * 6 and per_tick[6:10] == [0] * 4  # they kept the spread


async def test_a_tick_with_nothing_due_does_not_walk_every_rule(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once its windows are planned, a tick looks up no window's rules: the due queue
    says what is due (walking windows x rules was 100,000 checks a second at 10,000
    windows). A reload plans them again, and a changed rule runs at once."""
    for i in range(5):
        d = Deployment(f"svc{i}", "production", "v2", previous_version="v1")
        await world.windows.open_window(d, window_seconds=600, actor="test")
    start = world.clock.now()
    await _tick(world, start)
    ruleset_class = type(world.engine.rules.current)
    looked_up: list[str] = []
    real = ruleset_class.for_deployment

    def counted(self: Any, d: Deployment) -> Any:
        looked_up.append(d.service)
        return real(self, d)

    monkeypatch.setattr(ruleset_class, "for_deployment", counted)
    calls = len(world.source.calls)
    for second in range(1, 10):
        await _tick(world, start + second)
    assert looked_up == [] and len(world.source.calls) == calls  # nothing due, nothing read
    await _tick(world, start + 10)
    assert looked_up == [] and len(world.source.calls) == calls + 5 * 3
    world.engine.reset_rules({"oom"})  # what a reload of a changed rule does
    await _tick(world, start + 11)
    assert sorted(looked_up) == [f"svc{i}" for i in range(5)]
    assert [c[0] for c in world.source.calls[calls + 15 :]] == ["oom"] * 5


async def test_a_rule_still_in_flight_is_not_started_again_and_runs_once_it_ends(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample that outlasts three intervals starts no second one meanwhile; the first
    tick after it ends starts the next, on a grid of its own from then."""
    gate, started = asyncio.Event(), []
    real = world.source.sample

    async def slow(rule: Any, ctx: Any) -> Any:
        if rule.name == "oom" and ctx.live:
            started.append(ctx.at)
            await gate.wait()
        return await real(rule, ctx)

    monkeypatch.setattr(world.source, "sample", slow)
    await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    start = world.clock.now()
    for second in range(35):
        world.clock.advance(start + second - world.clock.now())
        await world.engine.tick()
        await asyncio.sleep(0)  # let the started tasks reach the source
    assert started == [start]
    gate.set()
    await world.engine.drain()
    await _tick(world, start + 35)
    await _tick(world, start + 36)
    assert started == [start, start + 35]
    await _tick(world, start + 45)
    assert started == [start, start + 35, start + 45]
