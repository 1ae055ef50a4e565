"""How an elapsed window ends (watchdog/lifecycle/endings.py, watchdog/evaluation/coverage.py), through the
engine the app builds, with a fake clock and scripted sources: passed only when every
rollback/approve rule was judged for most of the window; inconclusive naming each rule
that was not, and why; expired_while_held naming the holder; the coverage survives a
restart; an approval is journaled and linked to what asked for it. Nothing sleeps."""

# ruff: noqa: F811 (the engine's `world` fixture is imported, then named by each test)

from __future__ import annotations

from tests.unit.test_engine import World, deploy, world  # noqa: F401 (the fixture)
from watchdog.evaluation.coverage import BLIND, NO_DATA, NO_VERDICT, SOURCE_ERROR, gap_cause, needed
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import EventKind, RuleState, Sample, Verdict, WindowPhase
from watchdog.rulefile.schema import Policy, PrometheusRule


async def ended(world: World, window_id: str) -> tuple[WindowPhase, str | None]:
    final = await world.store.get_window(window_id)
    assert final is not None
    return final.phase, final.reason


async def test_a_window_judged_all_along_passes_with_its_coverage(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    await world.run_for(70)
    assert (await ended(world, w.id))[0] is WindowPhase.PASSED
    [passed] = [e for e in await world.store.list_events(w.id) if e.kind is EventKind.WINDOW_PASSED]
    assert passed.data["rules"]["errors"]["judged"] == 6
    assert passed.data["rules"]["errors"]["evaluations"] == 6


async def test_a_blind_rollback_rule_makes_it_inconclusive_named_per_rule(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    world.source.values["errors"] = Sample.failed("cannot connect to Prometheus at x")
    world.source.values["latency"] = Sample.no_data("empty result")
    await world.run_for(70)
    phase, reason = await ended(world, w.id)
    assert phase is WindowPhase.INCONCLUSIVE
    assert reason is not None and reason.startswith("inconclusive: watched nothing for 1m")
    assert "errors: blind, judged 0 of 6 evaluations (needs 3)" in reason
    assert "cannot connect to Prometheus at x" in reason
    assert "latency: no data, judged 0 of 6 evaluations (needs 3): empty result" in reason
    assert "check Prometheus" in reason
    [end] = [
        e for e in await world.store.list_events(w.id) if e.kind is EventKind.WINDOW_INCONCLUSIVE
    ]
    assert [g["rule"] for g in end.data["unjudged"]] == ["errors", "latency"]
    assert end.data["unjudged"][0] == {
        "rule": "errors",
        "source": "prometheus",
        "judged": 0,
        "evaluations": 6,
        "needed": 3,
        "cause": BLIND,
        "reason": "cannot connect to Prometheus at x",
    }
    assert end.data["severity"] == "warning"
    assert world.executor.calls == []
    # The API's rules carry the coverage the status page draws.
    views = {r.name: r for r in (await world.windows.detail(w.id)).rules}
    assert (views["errors"].judged, views["errors"].evaluations) == (0, 6)
    assert views["errors"].gaps == {BLIND: 6} and views["latency"].gaps == {NO_DATA: 6}


async def test_a_notify_rule_that_saw_nothing_does_not_block_a_pass(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    world.source.values["oom"] = Sample.failed("connection refused")  # action: notify
    await world.run_for(70)
    assert (await ended(world, w.id))[0] is WindowPhase.PASSED


async def test_most_of_the_window_means_the_judged_fraction(world: World) -> None:
    # 10 evaluations of 100 s: blind for the first four is still judged 6 of 10 ...
    w = await world.windows.open_window(deploy(), window_seconds=100, actor="test")
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_for(40)
    world.source.values["errors"] = Sample.of(0.01)
    await world.run_for(70)
    assert (await ended(world, w.id))[0] is WindowPhase.PASSED
    # ... blind for the first six is judged 4 of 10: not most of it.
    v = await world.windows.open_window(deploy("v3"), window_seconds=100, actor="test")
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_for(60)
    world.source.values["errors"] = Sample.of(0.01)
    await world.run_for(50)
    phase, reason = await ended(world, v.id)
    assert phase is WindowPhase.INCONCLUSIVE
    assert reason is not None and "not judged for most of 1m40s" in reason
    assert "errors: blind, judged 4 of 10 evaluations (needs 5)" in reason


async def test_coverage_survives_a_restart(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=100, actor="test")
    world.source.values["errors"] = Sample.failed("connection refused")
    await world.run_for(60)  # 6 blind evaluations, persisted with the rule's state
    async with world.restart() as parts:
        world.source.values["errors"] = Sample.of(0.01)
        for _ in range(11):
            await parts.engine.tick()
            await parts.engine.drain()
            world.clock.advance(5)
        final = await parts.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.INCONCLUSIVE
    assert final.reason is not None and "judged 4 of 10 evaluations" in final.reason


async def test_a_hold_that_expires_while_a_rule_fires_pages_the_holder(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=120, actor="test")
    await world.windows.hold(w.id, actor="slack:U0ALICE", reason="looking")
    world.source.values["errors"] = Sample.of(0.5)
    await world.run_for(130)
    phase, reason = await ended(world, w.id)
    assert phase is WindowPhase.EXPIRED_WHILE_HELD
    assert world.executor.calls == []
    [end] = [
        e
        for e in await world.store.list_events(w.id)
        if e.kind is EventKind.WINDOW_EXPIRED_WHILE_HELD
    ]
    assert "expired while held: errors firing when the window ended" in end.message
    assert "held by slack:U0ALICE since 2027-01-15T08:00:00Z" in end.message
    assert end.data["holder"] == end.data["actor"] == "slack:U0ALICE"
    assert end.data["firing"] == ["errors"] and end.data["severity"] == "critical"
    assert reason == end.message


async def test_a_hold_that_expires_healthy_passes(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    await world.windows.hold(w.id, actor="alice", reason="looking")
    await world.run_for(70)
    assert (await ended(world, w.id))[0] is WindowPhase.PASSED


async def test_an_api_approval_is_journaled_and_linked_to_its_request(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    world.source.values["latency"] = Sample.of(5.0)  # approve rule: > 2 * baseline (0)
    await world.run_for(10)
    assert (await ended(world, w.id))[0] is WindowPhase.AWAITING_APPROVAL
    await world.windows.rollback(w.id, actor="api (bob)", reason=None)  # the API's rollback
    await world.engine.drain()
    events = await world.store.list_events(w.id)
    [asked] = [e for e in events if e.kind is EventKind.APPROVAL_NEEDED]
    [approved] = [e for e in events if e.kind is EventKind.APPROVED]
    assert approved.data == {"actor": "api (bob)", "approval_needed": asked.seq}
    assert approved.rule == "latency" and "api (bob): approved the rollback" in approved.message
    assert world.executor.calls == [("redeploy", w.id)]


async def test_a_window_that_ends_awaiting_approval_is_not_a_pass(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    world.source.values["latency"] = Sample.of(5.0)  # approve rule: > 2 * baseline (0)
    await world.run_for(10)
    assert (await ended(world, w.id))[0] is WindowPhase.AWAITING_APPROVAL
    await world.run_for(60)  # nobody approves before the window ends
    phase, reason = await ended(world, w.id)
    assert phase is WindowPhase.EXPIRED_WHILE_HELD
    assert world.executor.calls == []
    [end] = [
        e
        for e in await world.store.list_events(w.id)
        if e.kind is EventKind.WINDOW_EXPIRED_WHILE_HELD
    ]
    assert end.message.startswith("expired awaiting approval: latency asked for a rollback")
    assert end.data["awaiting_approval"] is True and end.data["severity"] == "critical"
    assert reason == end.message


# --- the pure part ----------------------------------------------------------------------
RULE = PrometheusRule.model_validate(
    {"name": "r", "source": "prometheus", "query": "q", "threshold": "> 1", "no_data": "ok"}
)


def cause(sample: Sample, rule: PrometheusRule = RULE) -> str | None:
    return gap_cause(sample, evaluate(rule, RuleState(), sample, 0.0))


def test_what_counts_as_judged() -> None:
    assert cause(Sample.of(0.5)) is None  # ok on a value read
    assert cause(Sample.of(5.0)) is None  # a breach
    # ok by `no_data: ok`, but an empty answer is no evidence
    assert cause(Sample.no_data("empty result")) == NO_DATA
    assert cause(Sample.of(float("nan"))) == NO_DATA
    assert cause(Sample.failed("refused")) == BLIND
    assert cause(Sample.failed("HTTP 400 bad_data", transient=False)) == SOURCE_ERROR
    breach = RULE.model_copy(update={"on_error": Policy.BREACH})
    assert cause(Sample.failed("refused"), breach) is None  # the failure is the signal
    relative = PrometheusRule.model_validate(
        {
            "name": "r",
            "source": "prometheus",
            "query": "q",
            "threshold": "> 2 * baseline",
            "baseline": {},
        }
    )
    assert cause(Sample.of(1.0), relative) == NO_VERDICT  # no baseline, no absolute clause


def test_needed_is_a_fraction_of_the_evaluations_and_never_zero() -> None:
    assert needed(10, 0.5) == 5 and needed(9, 0.5) == 5 and needed(0, 0.5) == 1
    assert needed(10, 1.0) == 10 and needed(3, 0.1) == 1


def test_coverage_round_trips_through_the_store_format() -> None:
    state = RuleState(Verdict.OK, judged=3, unjudged=2, gaps={"blind": 2}, gap_reason="x")
    assert RuleState.from_json(state.to_json()) == state
    assert "coverage" not in RuleState().to_json()  # old rows read as zero


async def test_a_confirmation_of_standing_rows_says_they_still_need_repair(world: World) -> None:
    w = await world.windows.open_window(deploy(), window_seconds=600, actor="test")
    now = world.clock.now()
    assert await world.store.set_phase(
        w.id, WindowPhase.CONFIRMING, at=now, reason=None, expected={WindowPhase.WATCHING}
    )
    confirming = await world.store.get_window(w.id)
    assert confirming is not None
    states = {"errors": RuleState(Verdict.OK, last_value=0.0, last_eval_at=now + 1)}
    phase = await world.engine.confirmation.finish(confirming, now + 2, states, ["errors"])
    assert phase is WindowPhase.ROLLED_BACK
    [done] = [e for e in await world.store.list_events(w.id) if e.kind is EventKind.RECOVERED]
    assert done.message.endswith(
        "errors: the rows counted before the rollback stay after it and still need repair "
        "(only new ones were judged)"
    )
    assert done.data["needs_repair"] == ["errors"]


async def test_a_query_prometheus_refuses_never_passes(world: World) -> None:
    # The second row: a PromQL syntax error answered 400 at every evaluation.
    w = await world.windows.open_window(deploy(), window_seconds=60, actor="test")
    refused = "Prometheus answered HTTP 400 bad_data: 1:8: parse error: unexpected <op:*>"
    world.source.values["errors"] = Sample.failed(refused, transient=False)
    await world.run_for(70)
    phase, reason = await ended(world, w.id)
    assert phase is WindowPhase.INCONCLUSIVE
    assert (
        reason is not None
        and f"errors: source error, judged 0 of 6 evaluations (needs 3): {refused}" in reason
    )
