"""Shadow mode and recovery confirmation with a fake clock, scripted sources and a
recording executor: what is journaled, what is counted, how often the plan runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import PLAN
from tests.rules import Rules, rules
from tests.world import World as AppWorld
from tests.world import app_settings
from watchdog.foundation.errors import Conflict
from watchdog.foundation.judgestate import JudgeState
from watchdog.foundation.model import (
    Deployment,
    Event,
    EventKind,
    RuleState,
    Sample,
    Verdict,
    Window,
    WindowPhase,
)
from watchdog.lifecycle.confirm import fired_rules, judge, restored_evidence
from watchdog.notify.render import buttons
from watchdog.settings import Settings
from watchdog.sources import SampleContext
from watchdog.store.base import RulePoint


def rule_file(folder: Path, queue_shadow: bool) -> Rules:
    """errors (rollback), queue (rollback, in shadow unless armed), slow (approve)."""
    return (
        rules(folder)
        .prometheus("errors", "errors", above=0.05, action="rollback", severity="critical")
        .prometheus("queue", "queue", above=100, action="rollback", shadow=queue_shadow)
        .prometheus("slow", "slow", above=2, action="approve")
    )


class World(AppWorld):
    def would(self, rule: str) -> float | None:
        return self.metric("watchdog_would_rollback_total", service="api", rule=rule)

    async def arm(self) -> None:
        """Drop `shadow: true` from `queue` and reload, as a SIGHUP does."""
        rule_file(self.settings.rules[0].parent, queue_shadow=False).write()
        result = await self.parts.reloader.reload()
        assert result.ok and result.changed == ["queue"], result


def world_of(tmp_path: Path, **values: Any) -> AbstractAsyncContextManager[World]:
    """The real app (fake clock, scripted source, recording executor) with ``values``."""
    plans = {"default": PLAN, "slow-platform": PLAN.model_copy(update={"confirm_for": 900.0})}
    values = {"confirm_for": 60, **values}
    file = rule_file(tmp_path, queue_shadow=True)
    return World.of(app_settings(tmp_path, file, plans=plans, default_plan="default", **values))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with world_of(tmp_path) as w:
        yield w


def deploy(plan: str | None = None) -> Deployment:
    return Deployment("api", "production", "v2", previous_version="v1", plan=plan)


# --- shadow ---------------------------------------------------------------------------
async def test_a_shadow_rule_journals_would_roll_back_once_and_never_acts(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=300, actor="test")
    world.source.values["queue"] = Sample.of(500)
    await world.run_for(120)  # twelve firing evaluations
    assert world.executor.calls == []
    assert await world.phase(w) is WindowPhase.WATCHING
    [would] = await world.events(w, EventKind.WOULD_ROLL_BACK)
    assert would.rule == "queue"
    assert would.data["plan"] == "default"
    assert would.data["steps"] == [{"name": "redeploy", "kind": "command"}]
    assert would.data["shadow"] == "rule" and would.data["needs_approval"] is False
    assert "would roll back api to v1 with plan default (redeploy)" in would.message
    assert "Nothing was done" in would.message
    assert world.would("queue") == 1
    [firing] = await world.events(w, EventKind.RULE_FIRING)
    assert firing.data["shadow"] is True and "shadow mode: nothing will act" in firing.message
    # Not a pass: a live rule would have rolled the deploy back, and the end says so.
    await world.run_until(w, WindowPhase.WOULD_HAVE_ROLLED_BACK)
    assert world.executor.calls == []
    [end] = await world.events(w, EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK)
    assert "would have rolled back: queue fired at 2027-01-15T08:00:00Z" in end.message
    assert end.data["would_roll_back"] == "rule:queue" and end.data["rule"] == "queue"


async def test_arming_the_rule_then_the_same_fault_rolls_back_exactly_once(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["queue"] = Sample.of(500)
    await world.run_for(30)
    assert len(await world.events(w, EventKind.WOULD_ROLL_BACK)) == 1
    assert world.executor.calls == []
    await world.arm()
    await world.run_until(w, WindowPhase.CONFIRMING)
    await world.run_for(120)
    assert world.executor.calls == [("redeploy", w.id)]
    assert len(await world.events(w, EventKind.ROLLBACK_STARTED)) == 1
    assert len(await world.events(w, EventKind.WOULD_ROLL_BACK)) == 1


async def test_a_shadow_window_shadows_every_rule_and_approvals_too(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=300, actor="test", shadow=True)
    assert w.shadow
    world.source.values["slow"] = Sample.of(5)  # an approve rule: would ask an approver
    await world.run_for(30)
    world.source.values["errors"] = Sample.of(0.5)  # a rollback rule, later
    await world.run_for(60)
    assert world.executor.calls == []
    assert await world.phase(w) is WindowPhase.WATCHING  # never awaiting_approval
    [would] = await world.events(w, EventKind.WOULD_ROLL_BACK)  # once per window
    assert would.rule == "slow" and would.data["needs_approval"] is True
    assert would.data["shadow"] == "window"
    assert "would ask an approver to roll back" in would.message
    opened = (await world.events(w, EventKind.WINDOW_OPENED))[0]
    assert opened.data["shadow"] is True and "in shadow" in opened.message


async def test_the_global_setting_opens_every_window_in_shadow(tmp_path: Path) -> None:
    async with world_of(tmp_path, shadow=True) as world:
        w = await world.windows.open_window(deploy(), window_seconds=300, actor="test")
        assert w.shadow and (await world.store.get_window(w.id)).shadow  # type: ignore[union-attr]
        world.source.values["errors"] = Sample.of(0.5)
        await world.run_for(60)
        assert world.executor.calls == []
        assert world.would("errors") == 1


async def test_the_services_setting_opens_their_windows_in_shadow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_SHADOW_SERVICES", "payments-*,search")
    assert Settings().shadow_services == ["payments-*", "search"]
    async with world_of(tmp_path, shadow_services=["pay*"]) as world:
        paid = Deployment("payments-eu", "production", "v2", previous_version="v1")
        shadowed = await world.windows.open_window(paid, window_seconds=300, actor="t")
        plain = await world.windows.open_window(deploy(), window_seconds=300, actor="t")
        assert shadowed.shadow and not plain.shadow


async def test_a_person_can_still_roll_back_a_shadow_window(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=300, actor="test", shadow=True)
    await world.windows.rollback(w.id, actor="alice", reason="looks bad")
    await world.engine.drain()
    assert world.executor.calls == [("redeploy", w.id)]
    assert await world.events(w, EventKind.WOULD_ROLL_BACK) == []


async def test_slack_offers_no_acting_button_in_shadow(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=300, actor="test", shadow=True)
    assert [b["action_id"] for b in buttons(w)] == ["watchdog_ack"]
    plain = await world.windows.open_window(
        Deployment("web", "production", "v2"), window_seconds=300, actor="test"
    )
    ids = [b["action_id"] for b in buttons(plain)]
    assert "watchdog_rollback" in ids
    would = Event(plain.id, 0.0, EventKind.WOULD_ROLL_BACK, "shadow")
    assert [b["action_id"] for b in buttons(plain, would)] == ["watchdog_ack"]
    confirming = plain.with_phase(WindowPhase.CONFIRMING, 1.0)
    assert buttons(confirming) == []


# --- recovery confirmed -----------------------------------------------------------------
async def test_a_fault_that_heals_on_rollback_is_recovered_with_its_time(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.5)
    rolled_at = await world.run_until(w, WindowPhase.CONFIRMING)
    [succeeded] = await world.events(w, EventKind.ROLLBACK_SUCCEEDED)
    assert succeeded.data["confirm_for"] == 60
    assert "watching v1 for 1m to confirm errors recovers" in succeeded.message
    world.source.values["errors"] = Sample.of(0.0)  # the rollback healed it
    ended = await world.run_until(w, WindowPhase.ROLLED_BACK)
    assert ended - rolled_at >= 60
    [recovered] = await world.events(w, EventKind.RECOVERED)
    took = recovered.data["took"]
    assert 0 < took <= 10  # back to ok at the next evaluation, 10 s apart
    assert list(recovered.data["recovery"]) == ["errors"]  # the rule that fired, only
    assert recovered.data["recovery"]["errors"]["verdict"] == "ok"
    assert "recovered: errors back to ok" in recovered.message
    assert world.executor.calls == [("redeploy", w.id)]
    assert await world.events(w, EventKind.ROLLBACK_INEFFECTIVE) == []


async def test_a_fault_that_stays_is_ineffective_and_never_a_second_rollback(
    world: World,
) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.5)  # not the deploy's fault: it stays
    await world.run_until(w, WindowPhase.CONFIRMING)
    with pytest.raises(Conflict):  # a person cannot roll back twice either
        await world.windows.rollback(w.id, actor="alice", reason="again")
    world.source.values["queue"] = Sample.of(500)  # another rule fires while confirming
    await world.run_until(w, WindowPhase.ROLLBACK_INEFFECTIVE)
    await world.run_for(60)
    assert world.executor.calls == [("redeploy", w.id)]
    [ineffective] = await world.events(w, EventKind.ROLLBACK_INEFFECTIVE)
    assert ineffective.data["breaching"] == ["errors"]
    assert ineffective.data["severity"] == "critical"
    assert "errors still breaching 1m after rolling back to v1" in ineffective.message
    assert "the rollback did not fix it" in ineffective.message
    final = await world.store.get_window(w.id)
    assert final is not None and final.reason == ineffective.message
    assert await world.events(w, EventKind.WOULD_ROLL_BACK) == []


async def test_a_restart_while_confirming_carries_on_from_the_store(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.5)
    await world.run_until(w, WindowPhase.CONFIRMING)
    world.source.values["errors"] = Sample.of(0.0)
    async with world.restart() as again:  # a new process: nothing in memory, one store
        world.parts = again
        await world.run_until(w, WindowPhase.ROLLED_BACK)
    assert len(await world.events(w, EventKind.RECOVERED)) == 1
    assert world.executor.calls == [("redeploy", w.id)]


async def test_a_new_deploy_while_confirming_supersedes_the_window(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.5)
    await world.run_until(w, WindowPhase.CONFIRMING)
    await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    await world.run_for(120)
    assert await world.phase(w) is WindowPhase.SUPERSEDED
    assert await world.events(w, EventKind.ROLLBACK_INEFFECTIVE) == []
    assert await world.events(w, EventKind.RECOVERED) == []


async def test_a_rule_without_data_at_the_end_is_unconfirmed(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["errors"] = Sample.of(0.5)
    await world.run_until(w, WindowPhase.CONFIRMING)
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_until(w, WindowPhase.ROLLED_BACK)
    [unconfirmed] = await world.events(w, EventKind.RECOVERY_UNCONFIRMED)
    assert "errors had no verdict" in unconfirmed.message
    assert await world.events(w, EventKind.RECOVERED) == []


async def test_confirm_for_comes_from_the_deploy_then_the_plan_then_the_setting(
    world: World,
) -> None:
    asked = await world.windows.open_window(
        deploy(plan="slow-platform"), window_seconds=600, actor="t", confirm_for=30
    )
    by_plan = await world.windows.open_window(
        Deployment("b", "production", "v2", plan="slow-platform"), window_seconds=600, actor="t"
    )
    default = await world.windows.open_window(
        Deployment("c", "production", "v2"), window_seconds=600, actor="t"
    )
    assert (asked.confirm_for, by_plan.confirm_for, default.confirm_for) == (30, 900, 60)
    off = await world.windows.open_window(
        Deployment("d", "production", "v2"), window_seconds=600, actor="t", confirm_for=0
    )
    await world.windows.rollback(off.id, actor="alice", reason=None)
    await world.engine.drain()
    assert await world.phase(off) is WindowPhase.ROLLED_BACK  # nothing to confirm


async def test_a_confirming_window_outlives_its_watch_window(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=20, actor="test")
    await world.windows.rollback(w.id, actor="alice", reason=None)  # nothing firing
    await world.engine.drain()
    await world.run_for(30)  # past ends_at, within confirm_for
    assert await world.phase(w) is WindowPhase.CONFIRMING
    await world.run_until(w, WindowPhase.ROLLED_BACK)
    [recovered] = await world.events(w, EventKind.RECOVERED)
    assert set(recovered.data["recovery"]) == {"errors", "queue", "slow"}  # every rule
    assert recovered.data["took"] == 0


def test_judge_takes_the_last_return_to_ok() -> None:
    def ev(at: float, kind: EventKind, rule: str) -> Event:
        return Event("w", at, kind, "", rule=rule)

    after = [
        ev(110, EventKind.RULE_RESOLVED, "a"),
        ev(120, EventKind.RULE_FIRING, "a"),  # flapped
        ev(140, EventKind.RULE_RESOLVED, "a"),
        ev(105, EventKind.RULE_RESOLVED, "b"),
    ]
    states = {
        "a": RuleState(Verdict.OK, last_value=0.0, last_eval_at=150),
        "b": RuleState(Verdict.OK, last_value=0.0, last_eval_at=150),
        "c": RuleState(Verdict.PENDING),
        "d": RuleState(Verdict.INCONCLUSIVE),
        # ok by its `no_data: ok` policy, on an empty answer: no data is never a recovery
        "f": RuleState(Verdict.OK, last_value=None, last_eval_at=150),
        # ok, but last read before the rollback: says nothing about the restored version
        "g": RuleState(Verdict.OK, last_value=0.0, last_eval_at=90),
    }
    out = judge(["a", "b", "c", "d", "e", "f", "g"], states, after, since=100)
    assert out.recovered == {"a": 40, "b": 5}
    assert out.took == 40
    assert out.breaching == ("c",)
    assert out.unknown == ("d", "e", "f", "g")


@pytest.mark.parametrize(
    ("points", "took"),
    [
        # ok on an empty answer first (waiting for the first scrape), a value at 112:
        # the recovery is dated by the value, not by the empty answer at 101
        ([(101, None, Verdict.OK), (106, None, Verdict.OK), (112, 0.01, Verdict.OK)], 12),
        # healthy, breaching again, healthy for good: the last return counts
        ([(103, 0.0, Verdict.OK), (108, 0.3, Verdict.PENDING), (115, 0.0, Verdict.OK)], 15),
        # points from before the rollback say nothing about the restored version
        ([(90, 0.0, Verdict.OK), (120, 0.0, Verdict.OK)], 20),
        # no point kept: the journal's last return to ok dates it (101)
        ([], 1),
    ],
)
def test_a_recovery_is_dated_by_the_first_healthy_value(
    points: list[tuple[float, float | None, Verdict]], took: float
) -> None:
    after = [Event("w", 101, EventKind.RULE_RESOLVED, "ok: no data", rule="a")]
    states = {"a": RuleState(Verdict.OK, last_value=0.0, last_eval_at=130)}
    series = {"a": [RulePoint(at, value, verdict) for at, value, verdict in points]}
    out = judge(["a"], states, after, since=100, points=series)
    assert out.recovered == {"a": took}


def test_the_rules_that_fired_are_read_from_the_journal() -> None:
    def ev(kind: EventKind, rule: str | None = None, **data: str) -> Event:
        return Event("w", 0.0, kind, "", rule=rule, data=data)

    events = [
        ev(EventKind.RULE_FIRING, "a"),
        ev(EventKind.RULE_FIRING, "b"),
        ev(EventKind.RULE_RESOLVED, "b"),  # was firing, not any more
        ev(EventKind.RULE_PENDING, "c"),  # never fired
        ev(EventKind.ROLLBACK_STARTED, trigger="d"),  # its trigger, even if reset by a reload
        ev(EventKind.RULE_FIRING, "e"),  # after the rollback started: not an answer to it
    ]
    assert fired_rules(events) == ["a", "d"]
    manual = [ev(EventKind.RULE_FIRING, "a"), ev(EventKind.ROLLBACK_STARTED, trigger="manual")]
    assert fired_rules(manual) == ["a"]


async def test_while_confirming_sources_read_only_the_restored_versions_data(
    world: World,
) -> None:
    seen: list[tuple[str, float | None]] = []
    scripted = world.source.sample

    async def recording(rule: Any, ctx: SampleContext) -> Sample:
        seen.append((rule.name, ctx.since))
        return await scripted(rule, ctx)

    world.source.sample = recording  # type: ignore[method-assign]
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    await world.run_for(20)  # healthy for a while: the rollback comes after the opening
    world.source.values["errors"] = Sample.of(0.5)
    rolled_at = await world.run_until(w, WindowPhase.CONFIRMING)
    confirming = await world.store.get_window(w.id)
    assert confirming is not None and confirming.evidence_since == confirming.updated_at
    before = len(seen)
    await world.run_for(20)
    assert {since for _, since in seen[:before]} == {w.started_at}
    assert {since for _, since in seen[before:]} == {confirming.updated_at}
    assert w.started_at < confirming.updated_at <= rolled_at


def test_a_judges_counts_start_again_on_the_restored_version() -> None:
    window = Window("w", deploy(), WindowPhase.CONFIRMING, 0.0, 600.0, 100.0, confirm_for=60)
    counted = RuleState(Verdict.FIRING, last_eval_at=90.0, judge=JudgeState(opened_at=0.0))
    fresh = restored_evidence(counted, window)
    assert fresh.judge is None and fresh.verdict is Verdict.FIRING  # a recovery is a transition
    later = replace(counted, last_eval_at=110.0)  # counted since the rollback: kept
    assert restored_evidence(later, window) is later
    watching = window.with_phase(WindowPhase.WATCHING, 100.0)
    assert restored_evidence(counted, watching) is counted
    assert watching.evidence_since == 0.0
