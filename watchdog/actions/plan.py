"""Runs a rollback plan: steps in order, transient failures retried with backoff.

The runner never raises because a step failed: whatever an executor does (returns,
raises ``TransientError``/``PermanentError``, or raises something unexpected), the
caller gets a :class:`PlanOutcome`. Only cancellation propagates.

Retry policy for one step (``retries`` extra attempts after a transient failure): the
one backoff rule of :mod:`watchdog.foundation.retry`, from the step's ``backoff``, capped at
``max_backoff``, ``Retry-After`` honoured up to ``max_retry_after``.

All waiting goes through the injected clock, so tests with ``FakeClock`` never sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from watchdog.actions.base import ActionContext, Executor, StepResult
from watchdog.actions.spec import Plan, Step
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.retry import backoff_delay
from watchdog.ha.coord import LeadershipLost, PlanPaused
from watchdog.plumbing.logs import get_logger

log = get_logger(__name__)

MAX_BACKOFF = 30.0
"""Cap of the exponential backoff between attempts of one step."""

MAX_RETRY_AFTER = 300.0
"""A server's ``Retry-After`` is honoured up to this: a rollback must not stall for hours."""

TIMEOUT_GRACE = 5.0
"""Extra time past ``step.timeout`` before the runner itself gives up on an executor."""


@dataclass(frozen=True)
class StepOutcome:
    """One attempt of one step, as reported to ``on_step`` (and kept in the journal)."""

    step: str
    kind: str
    index: int  # position in the plan, so a crashed run can resume with start_at
    attempt: int  # 1 for the first try
    ok: bool
    transient: bool | None  # None when ok; else whether trying again could help
    output: str = ""  # what the step said on success
    error: str | None = None  # why it failed
    duration: float = 0.0  # seconds, measured with the injected clock
    data: Mapping[str, Any] = field(default_factory=dict)
    retry_in: float | None = None  # delay before the next attempt; None = no retry


@dataclass(frozen=True)
class PlanOutcome:
    """How a plan run ended. ``steps`` holds the last attempt of every step that ran."""

    ok: bool
    steps: tuple[StepOutcome, ...] = ()
    failed_step: str | None = None
    failed_index: int | None = None
    error: str | None = None


OnStep = Callable[[StepOutcome], Awaitable[None]]
OnStart = Callable[[int, Step, int], Awaitable[None]]
"""Called with (index, step, attempt) before an attempt: where the intent is journaled."""


class PlanRunner:
    """Runs plans with one :class:`Executor` per step kind (``{"http": ..., ...}``)."""

    def __init__(
        self,
        executors: Mapping[str, Executor],
        clock: Clock,
        *,
        max_backoff: float = MAX_BACKOFF,
        max_retry_after: float = MAX_RETRY_AFTER,
        timeout_grace: float = TIMEOUT_GRACE,
    ) -> None:
        self._executors = dict(executors)
        self._clock = clock
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._grace = timeout_grace

    async def run(
        self,
        plan: Plan,
        ctx: ActionContext,
        on_step: OnStep,
        start_at: int = 0,
        on_start: OnStart | None = None,
    ) -> PlanOutcome:
        """Run ``plan.steps[start_at:]`` in order; stop at the first step that fails for good.

        ``on_step`` is awaited after every attempt; if it raises, the error is logged and
        the plan goes on (a journal hiccup must not leave a rollback half done).
        ``on_start`` is awaited before every attempt; if it raises, the attempt is not
        made and the plan stops with :class:`PlanPaused`: a step whose intent could not
        be recorded must not run (a crash could hide that it did), and it is not the
        step's failure either: the re-drive resumes the plan when the store is back.
        """
        if not 0 <= start_at <= len(plan.steps):
            raise ValueError(f"start_at {start_at} outside 0..{len(plan.steps)}")
        done: list[StepOutcome] = []
        for index in range(start_at, len(plan.steps)):
            outcome = await self._run_step(index, plan.steps[index], ctx, on_step, on_start)
            done.append(outcome)
            if not outcome.ok:
                return PlanOutcome(
                    ok=False,
                    steps=tuple(done),
                    failed_step=outcome.step,
                    failed_index=index,
                    error=outcome.error,
                )
        return PlanOutcome(ok=True, steps=tuple(done))

    async def _run_step(
        self,
        index: int,
        step: Step,
        ctx: ActionContext,
        on_step: OnStep,
        on_start: OnStart | None,
    ) -> StepOutcome:
        attempt = 1
        while True:
            outcome, retry_after = await self._attempt(index, step, ctx, attempt, on_start)
            if outcome.transient and attempt <= step.retries:
                outcome = dataclasses.replace(
                    outcome, retry_in=self._delay(step, attempt, retry_after)
                )
            await _report(on_step, outcome)
            if outcome.retry_in is None:
                return outcome
            await self._clock.sleep(outcome.retry_in)
            attempt += 1

    def _delay(self, step: Step, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(
            attempt,
            first=step.backoff,
            cap=self._max_backoff,
            retry_after=retry_after,
            retry_after_cap=self._max_retry_after,
        )

    async def _attempt(
        self, index: int, step: Step, ctx: ActionContext, attempt: int, on_start: OnStart | None
    ) -> tuple[StepOutcome, float | None]:
        base = StepOutcome(
            step=step.name, kind=step.kind, index=index, attempt=attempt, ok=True, transient=None
        )
        started = self._clock.now()
        retry_after: float | None = None
        try:
            if on_start is not None:
                await _intent(on_start, index, step, attempt)
            result = await self._execute(step, dataclasses.replace(ctx, attempt=attempt))
            outcome = dataclasses.replace(base, output=result.output, data=dict(result.data))
        except TransientError as exc:
            retry_after = exc.retry_after
            outcome = dataclasses.replace(base, ok=False, transient=True, error=str(exc))
        except PermanentError as exc:
            outcome = dataclasses.replace(base, ok=False, transient=False, error=str(exc))
        except (LeadershipLost, PlanPaused):
            raise  # not the step's failure: the plan is left to the leader's recovery
        except Exception as exc:
            log.exception("step crashed", step=step.name, kind=step.kind, attempt=attempt)
            error = f"unexpected {type(exc).__name__}: {exc}"
            outcome = dataclasses.replace(base, ok=False, transient=False, error=error)
        duration = max(0.0, self._clock.now() - started)
        return dataclasses.replace(outcome, duration=duration), retry_after

    async def _execute(self, step: Step, ctx: ActionContext) -> StepResult:
        executor = self._executors.get(step.kind)
        if executor is None:
            raise PermanentError(f"no executor for step kind {step.kind!r}")
        try:
            async with asyncio.timeout(step.timeout + self._grace):
                return await executor.run(step, ctx)
        except TimeoutError:
            raise TransientError(f"step did not finish within {step.timeout:g}s") from None


async def _intent(on_start: OnStart, index: int, step: Step, attempt: int) -> None:
    try:
        await on_start(index, step, attempt)
    except LeadershipLost:
        raise  # not a step failure: the plan is abandoned to the new leader
    except Exception as exc:
        log.error(
            "could not record a step's intent: the rollback pauses until the store answers",
            step=step.name,
            attempt=attempt,
            error=f"{type(exc).__name__}: {exc}",
        )
        raise PlanPaused(f"could not record the intent to run step {step.name}: {exc}") from exc


async def _report(on_step: OnStep, outcome: StepOutcome) -> None:
    try:
        await on_step(outcome)
    except Exception:
        log.exception("on_step callback failed", step=outcome.step, attempt=outcome.attempt)
