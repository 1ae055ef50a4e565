"""The Act stage: run the window's rollback plan, journaling every step.

Before each step the leader is asked again (a deposed leader stops); every write a
rollback cannot lose (the step's intent, its result) goes through
:func:`watchdog.ha.patience.persist`, and a step whose result the store never took is
kept in :attr:`Act.unrecorded` for recovery's evidence.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from watchdog.actions.base import ActionContext
from watchdog.actions.plan import PlanOutcome, PlanRunner, StepOutcome
from watchdog.actions.spec import Plan, Step, VerifyStep, plan_for
from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EventKind, Window
from watchdog.ha.coord import Coordinator, LeadershipLost, PlanPaused
from watchdog.ha.fencing import Deposed
from watchdog.ha.inflight import INSTANCE
from watchdog.ha.patience import persist
from watchdog.pipeline.base import Decision
from watchdog.pipeline.crashpoints import CrashPoints
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.pipeline")


class Act:
    """Run the window's rollback plan, journaling every step."""

    def __init__(
        self,
        plans: Mapping[str, Plan],
        default_plan: str | None,
        runner: PlanRunner,
        journal: Journal,
        clock: Clock,
        crash: CrashPoints | None = None,
        coordinator: Coordinator | None = None,
        deposed: Deposed | None = None,
    ) -> None:
        self._deposed = deposed
        self._plans = plans
        self._default = default_plan
        self._runner = runner
        self._journal = journal
        self._clock = clock
        self._crash = crash or CrashPoints()
        self._coordinator = coordinator  # checked before each step: a deposed leader stops
        # Step results the store never took (an outage past the patience): recovery's
        # evidence, so the step is not "in doubt" to the replica that ran it.
        self.unrecorded: dict[tuple[str, str], StepOutcome] = {}

    def plan_of(self, window: Window) -> Plan | None:
        """The plan a window's rollback runs (:func:`plan_for`)."""
        return plan_for(window.deployment, self._plans, self._default)[1]

    async def check(self, window: Window, step: VerifyStep) -> StepOutcome:
        """Run a read-only step once, outside the plan and its journal (recovery's
        version evidence, ``pipeline/evidence.py``)."""
        ctx = ActionContext(window, window.deployment.template_vars())

        async def quiet(_: StepOutcome) -> None:
            return None

        outcome = await self._runner.run(Plan(steps=[step]), ctx, quiet)
        return outcome.steps[-1]

    async def __call__(self, d: Decision) -> Decision | None:
        """Execute the plan and attach its outcome; stop if this replica was deposed."""
        try:
            return await self.resume(d, 0)
        except LeadershipLost as exc:
            if self._deposed is not None:
                await self._deposed.lost(d.window, str(exc), at=self._clock.now())
            return None
        except PlanPaused:
            # Logged where it happened; the window stays rolling_back, the action claimed:
            # the leader's re-drive resumes it when the store answers (pipeline/recovery.py).
            return None

    async def resume(self, d: Decision, start_at: int) -> Decision:
        """Run the plan from step ``start_at`` (recovery after a crash starts later).

        Raises :class:`LeadershipLost` when this replica stops leading before a step.
        """
        name, plan = plan_for(d.window.deployment, self._plans, self._default)
        if plan is None:
            error = f"no rollback plan {name!r} configured" if name else "no rollback plan set"
            outcome = PlanOutcome(ok=False, failed_step=None, error=error)
            return d.but(outcome=outcome)
        ctx = ActionContext(d.window, d.window.deployment.template_vars())
        held = [d.token]  # the token we go on with: a lease re-taken by us renews it

        async def on_start(index: int, step: Step, attempt: int) -> None:
            held[0] = await self._still_leading(d.window, held[0], step)
            await persist(
                self._clock,
                "a step's intent",
                lambda: self._journal_intent(d.window, index, step, attempt),
                back=lambda away: self._store_back(d.window, away),
            )

        async def on_step(step: StepOutcome) -> None:
            self._crash.reach(f"step_returned:{step.step}")
            # Its result is the evidence recovery needs: kept through a store blip, and
            # in memory past it.
            self.unrecorded[(d.window.id, step.step)] = step
            await persist(
                self._clock,
                "a step's result",
                lambda: self._journal_step(d.window, step),
                back=lambda away: self._store_back(d.window, away),
            )
            del self.unrecorded[(d.window.id, step.step)]

        outcome = await self._runner.run(plan, ctx, on_step, start_at, on_start)
        return d.but(outcome=outcome, token=held[0])

    async def _store_back(self, window: Window, away: float) -> None:
        # The outage is journaled once the store answers again: people reading the
        # window see why the rollback took longer.
        try:
            await self._journal.record(
                window,
                EventKind.ROLLBACK_RESUMED,
                f"the store was unreachable for {away:.1f}s mid-rollback: the rollback goes on",
                at=self._clock.now(),
                data={"store_outage": round(away, 1)},
                notify=False,
            )
        except Exception:
            log.warning("could not journal the store outage", window=window.id)

    async def _journal_intent(self, window: Window, index: int, step: Step, attempt: int) -> None:
        # Written before the attempt: a crash from here on leaves the step "in doubt".
        if attempt == 1:
            self._crash.reach(f"before_step:{step.name}")
        await self._journal.record(
            window,
            EventKind.STEP_STARTED,
            f"step {step.name} starting (attempt {attempt})",
            at=self._clock.now(),
            data={"step": step.name, "index": index, "attempt": attempt, "by": INSTANCE},
            notify=False,
        )

    async def _still_leading(self, window: Window, token: int | None, step: Step) -> int | None:
        # A leader frozen past its lease may wake mid-plan: the new leader's recovery
        # owns the window now, so this one stops before its next step. A lease this
        # replica re-took with no other leader in between (a Redis restart) is the same
        # leadership: the rollback goes on under the new token.
        if self._coordinator is None or token is None:
            return token
        current = await self._coordinator.carry(token)
        if current is None:
            log.warning("lost the lease mid-rollback: stopping", window=window.id, step=step.name)
            raise LeadershipLost(f"not the leader any more before step {step.name}")
        if current != token:
            log.info("lease re-taken by this replica: the rollback goes on", token=current)
        return current

    async def _journal_step(self, window: Window, step: StepOutcome) -> None:
        kind = EventKind.STEP_SUCCEEDED if step.ok else EventKind.STEP_FAILED
        verb = "succeeded" if step.ok else "failed"
        text = step.output if step.ok else step.error
        await self._journal.record(
            window,
            kind,
            f"step {step.step} {verb} (attempt {step.attempt})",
            at=self._clock.now(),
            data={
                "step": step.step,
                "attempt": step.attempt,
                "transient": step.transient,
                "output": (text or "")[-2000:],
                "duration": step.duration,
            },
            notify=False,
        )
