from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.plan import PlanOutcome, PlanRunner, StepOutcome
from watchdog.actions.spec import Plan
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Window, WindowPhase

Script = Sequence[StepResult | BaseException]


class FakeExecutor:
    """Plays a script per step name; records (step name, attempt) of every call."""

    def __init__(self, scripts: dict[str, Script], clock: FakeClock, cost: float = 0.0) -> None:
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.calls: list[tuple[str, int]] = []
        self.clock = clock
        self.cost = cost

    async def run(self, step: Any, ctx: ActionContext) -> StepResult:
        self.calls.append((step.name, ctx.attempt))
        self.clock.advance(self.cost)
        script = self.scripts.get(step.name, [])
        item = script.pop(0) if script else StepResult(output=f"{step.name} ok")
        if isinstance(item, BaseException):
            raise item
        return item


def make_plan(*names: str, retries: int = 3, backoff: float = 1.0) -> Plan:
    steps = [
        {"kind": "command", "name": n, "argv": ["true"], "retries": retries, "backoff": backoff}
        for n in names
    ]
    return Plan.model_validate({"steps": steps})


@pytest.fixture
def ctx() -> ActionContext:
    deployment = Deployment(service="api", environment="prod", version="v2", previous_version="v1")
    window = Window("w1", deployment, WindowPhase.ROLLING_BACK, 0.0, 1800.0, 0.0)
    return ActionContext(window=window, variables=deployment.template_vars())


class Recorder:
    def __init__(self) -> None:
        self.outcomes: list[StepOutcome] = []

    async def __call__(self, outcome: StepOutcome) -> None:
        self.outcomes.append(outcome)


async def run(
    plan: Plan, ctx: ActionContext, executor: FakeExecutor, clock: FakeClock, start_at: int = 0
) -> tuple[PlanOutcome, Recorder]:
    recorder = Recorder()
    runner = PlanRunner({"command": executor}, clock)
    outcome = await runner.run(plan, ctx, recorder, start_at=start_at)
    return outcome, recorder


async def test_all_steps_succeed_in_order(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({}, clock)
    outcome, rec = await run(make_plan("a", "b", "c"), ctx, executor, clock)
    assert outcome.ok and outcome.failed_step is None and outcome.error is None
    assert [s.step for s in outcome.steps] == ["a", "b", "c"]
    assert executor.calls == [("a", 1), ("b", 1), ("c", 1)]
    assert [o.output for o in rec.outcomes] == ["a ok", "b ok", "c ok"]
    assert clock.slept == []


async def test_transient_retried_with_doubling_backoff_then_succeeds(ctx: ActionContext) -> None:
    clock = FakeClock()
    flaky = [TransientError("503"), TransientError("503"), TransientError("503")]
    executor = FakeExecutor({"a": [*flaky, StepResult(output="done")]}, clock)
    outcome, _ = await run(make_plan("a", "b", retries=3, backoff=1.0), ctx, executor, clock)
    assert outcome.ok
    assert clock.slept == [1.0, 2.0, 4.0]
    assert executor.calls == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 1)]
    assert outcome.steps[0].attempt == 4 and outcome.steps[0].output == "done"


async def test_backoff_is_capped_at_30s(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({"a": [TransientError("x")] * 4}, clock)
    await run(make_plan("a", retries=4, backoff=10.0), ctx, executor, clock)
    assert clock.slept == [10.0, 20.0, 30.0, 30.0]


async def test_retry_after_is_honoured_when_larger(ctx: ActionContext) -> None:
    clock = FakeClock()
    script = [TransientError("429", retry_after=7.0), TransientError("429", retry_after=0.5)]
    executor = FakeExecutor({"a": script}, clock)
    outcome, _ = await run(make_plan("a", retries=3, backoff=1.0), ctx, executor, clock)
    assert outcome.ok
    assert clock.slept == [7.0, 2.0]  # 7 > 1 wins; 2 > 0.5 wins


async def test_permanent_failure_stops_the_plan(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({"b": [PermanentError("400 bad request")]}, clock)
    outcome, rec = await run(make_plan("a", "b", "c"), ctx, executor, clock)
    assert not outcome.ok
    assert outcome.failed_step == "b" and outcome.failed_index == 1
    assert outcome.error == "400 bad request"
    assert executor.calls == [("a", 1), ("b", 1)]  # c never ran, b not retried
    assert clock.slept == []
    assert [(o.step, o.ok, o.transient) for o in rec.outcomes] == [
        ("a", True, None),
        ("b", False, False),
    ]


async def test_retries_exhausted_stops_the_plan(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({"a": [TransientError(f"try {i}") for i in range(1, 4)]}, clock)
    outcome, rec = await run(make_plan("a", "b", retries=2, backoff=1.0), ctx, executor, clock)
    assert not outcome.ok and outcome.failed_step == "a"
    assert outcome.error == "try 3"
    assert executor.calls == [("a", 1), ("a", 2), ("a", 3)]
    assert clock.slept == [1.0, 2.0]
    assert [o.retry_in for o in rec.outcomes] == [1.0, 2.0, None]


async def test_on_step_called_per_attempt_with_fields(ctx: ActionContext) -> None:
    clock = FakeClock()
    script: Script = [TransientError("busy"), StepResult(output="rolled", data={"status": 200})]
    executor = FakeExecutor({"a": script}, clock, cost=0.25)
    _, rec = await run(make_plan("a", retries=1, backoff=2.0), ctx, executor, clock)
    first, second = rec.outcomes
    assert first == StepOutcome(
        step="a", kind="command", index=0, attempt=1, ok=False, transient=True,
        error="busy", duration=0.25, retry_in=2.0,
    )  # fmt: skip
    assert second == StepOutcome(
        step="a", kind="command", index=0, attempt=2, ok=True, transient=None,
        output="rolled", duration=0.25, data={"status": 200},
    )  # fmt: skip


async def test_start_at_skips_earlier_steps(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({}, clock)
    outcome, rec = await run(make_plan("a", "b", "c"), ctx, executor, clock, start_at=2)
    assert outcome.ok
    assert executor.calls == [("c", 1)]
    assert [(o.step, o.index) for o in rec.outcomes] == [("c", 2)]


async def test_start_at_out_of_range_is_rejected(ctx: ActionContext) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        await run(make_plan("a"), ctx, FakeExecutor({}, clock), clock, start_at=5)


async def test_unexpected_exception_is_a_permanent_failure(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({"a": [KeyError("boom")]}, clock)
    outcome, rec = await run(make_plan("a", "b"), ctx, executor, clock)
    assert not outcome.ok and outcome.failed_step == "a"
    assert outcome.error is not None and "KeyError" in outcome.error
    assert executor.calls == [("a", 1)]
    assert rec.outcomes[0].transient is False


async def test_missing_executor_is_a_permanent_failure(ctx: ActionContext) -> None:
    clock = FakeClock()
    outcome = await PlanRunner({}, clock).run(make_plan("a"), ctx, Recorder())
    assert not outcome.ok and outcome.error is not None
    assert "no executor" in outcome.error


async def test_failing_on_step_callback_does_not_stop_the_plan(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({}, clock)

    async def broken(outcome: StepOutcome) -> None:
        raise RuntimeError("journal down")

    outcome = await PlanRunner({"command": executor}, clock).run(make_plan("a", "b"), ctx, broken)
    assert outcome.ok and executor.calls == [("a", 1), ("b", 1)]


async def test_context_carries_attempt_number(ctx: ActionContext) -> None:
    clock = FakeClock()
    executor = FakeExecutor({"a": [TransientError("x")]}, clock)
    await run(make_plan("a", retries=1), ctx, executor, clock)
    assert [attempt for _, attempt in executor.calls] == [1, 2]
