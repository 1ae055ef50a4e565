"""The stages of the decision path: gate → dedup → fence → act → record → notify."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import structlog

from watchdog.actions.base import ActionContext
from watchdog.actions.plan import PlanOutcome, PlanRunner, StepOutcome
from watchdog.actions.spec import Plan, Step, VerifyStep, plan_for
from watchdog.clock import Clock
from watchdog.confirm import after_success, succeeded
from watchdog.crashpoints import CrashPoints
from watchdog.errors import FencedOut
from watchdog.ha.coord import Coordinator, LeadershipLost, PlanPaused
from watchdog.ha.fencing import Deposed
from watchdog.ha.inflight import INSTANCE
from watchdog.ha.patience import persist
from watchdog.journal import Journal
from watchdog.metrics import Metrics
from watchdog.model import Action, ActionStatus, EventKind, Window, WindowPhase
from watchdog.pipeline.base import Decision, settle
from watchdog.store.base import ActionStore, WindowStore

log = structlog.get_logger("watchdog.pipeline")

ROLLBACK = "rollback"
ACTABLE = frozenset({WindowPhase.WATCHING, WindowPhase.HELD, WindowPhase.AWAITING_APPROVAL})


class ActionLog(ActionStore, WindowStore, Protocol):
    """Fence and Record: the action log and the window phase it moves."""


class Gate:
    """Is acting allowed at all? Reloads the window and applies holds and approvals."""

    def __init__(
        self,
        store: WindowStore,
        journal: Journal,
        plans: Mapping[str, Plan],
        default_plan: str | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._plans = plans
        self._default = default_plan
        self._suppressed: set[tuple[str, str]] = set()

    async def __call__(self, d: Decision) -> Decision | None:
        """Stop notify-only actions, held windows and rollbacks that need approval."""
        window = await self._store.get_window(d.window.id)
        if window is None or window.phase not in ACTABLE or d.action is Action.NOTIFY:
            return None
        d = d.but(window=window)
        if not d.automatic:
            return d
        if window.phase is WindowPhase.HELD:
            await self._suppress(d)
            return None
        if window.phase is WindowPhase.AWAITING_APPROVAL:
            return None
        _, plan = plan_for(window.deployment, self._plans, self._default)  # what Act runs
        if d.action is Action.APPROVE or (plan is not None and plan.data_loss_risk):
            await self._ask_approval(d)
            return None
        return d

    async def _suppress(self, d: Decision) -> None:
        # Say it once per rule: a held window keeps firing at every interval.
        key = (d.window.id, d.trigger)
        if key not in self._suppressed:
            self._suppressed.add(key)
            await self._journal.record(
                d.window,
                EventKind.ACTION_SUPPRESSED,
                f"{d.trigger} fired but the window is held: not rolling back",
                at=d.at,
                rule=d.trigger,
            )

    async def _ask_approval(self, d: Decision) -> None:
        moved = await self._store.set_phase(
            d.window.id,
            WindowPhase.AWAITING_APPROVAL,
            at=d.at,
            reason=d.reason,
            expected={WindowPhase.WATCHING},
        )
        if moved:
            await self._journal.record(
                d.window,
                EventKind.APPROVAL_NEEDED,
                f"{d.trigger} fired: rollback needs approval ({d.reason})",
                at=d.at,
                rule=d.trigger,
            )


class Dedup:
    """Has this window already been rolled back (or is it being)? Cheap early exit."""

    def __init__(self, store: ActionStore) -> None:
        self._store = store

    async def __call__(self, d: Decision) -> Decision | None:
        """Stop when the action log already has a rollback for the window."""
        if await self._store.get_action(d.window.id, ROLLBACK) is not None:
            return None
        return d


class Fence:
    """Take the leader's fencing token and claim the rollback in the action log.

    The claim is the exactly-once point: the store's unique (window, action) key lets
    one caller through, ever, and refuses a stale token.
    """

    def __init__(
        self,
        store: ActionLog,
        coordinator: Coordinator,
        journal: Journal,
        crash: CrashPoints | None = None,
        deposed: Deposed | None = None,
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._journal = journal
        self._crash = crash or CrashPoints()
        self._deposed = deposed or Deposed(coordinator, journal)

    async def __call__(self, d: Decision) -> Decision | None:
        """Claim the rollback; stop if another claim won or this replica does not lead."""
        token = await self._coordinator.token()
        if token is None:
            log.warning("not the leader: not acting", window=d.window.id, trigger=d.trigger)
            return None
        self._crash.reach("decided")
        try:
            claimed = await self._store.claim_action(
                d.window.id, ROLLBACK, token=token, actor=d.actor, at=d.at
            )
        except FencedOut as exc:
            await self._deposed.refused(d.window, exc, doing="claiming the rollback", at=d.at)
            return None
        if not claimed:
            return None
        self._crash.reach("claimed")
        return await self.begin(d.but(token=token))

    async def begin(self, d: Decision, *, announce: bool = True) -> Decision:
        """The claimed rollback begins: the window ``rolling_back``, ``rollback_started``
        journaled (unless ``announce`` is False: recovery found it journaled already)."""
        window = d.window
        if window.phase is not WindowPhase.ROLLING_BACK:
            await self._store.set_phase(
                window.id, WindowPhase.ROLLING_BACK, at=d.at, reason=d.reason, expected=ACTABLE
            )
            window = window.with_phase(WindowPhase.ROLLING_BACK, d.at, d.reason)
        settle(d, True)
        if announce:
            await self._journal.record(
                window,
                EventKind.ROLLBACK_STARTED,
                f"rolling back {window.deployment.service} to "
                f"{window.deployment.previous_version or 'the previous version'}: {d.reason}",
                at=d.at,
                rule=d.trigger if d.automatic else None,
                data={
                    "actor": d.actor,
                    "trigger": d.trigger,
                    "token": d.token,
                    "approved_by": d.approved_by,
                },
            )
        return d.but(window=window)


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
        version evidence, ``ha/evidence.py``)."""
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
            # the leader's re-drive resumes it when the store answers (ha/recovery.py).
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


class Record:
    """Write how the rollback ended: action log, window phase, journal, metrics.

    A rollback that succeeded leaves the window ``confirming`` when it has a
    ``confirm_for`` (watchdog/confirm.py), ``rolled_back`` otherwise.
    """

    def __init__(
        self,
        store: ActionLog,
        journal: Journal,
        clock: Clock,
        metrics: Metrics | None = None,
        deposed: Deposed | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        self._metrics = metrics
        self._deposed = deposed
        self._coordinator = coordinator  # a lease re-taken by us carries the token on

    async def __call__(self, d: Decision) -> Decision | None:
        """Finish the action (fenced by the token) and move the window on: confirming, or
        a terminal phase; a deposed leader's outcome is refused and nothing else is
        written."""
        assert d.outcome is not None and d.token is not None
        now = self._clock.now()
        ok = d.outcome.ok
        detail = None if ok else d.outcome.error
        token = await self._carried(d.token)
        try:
            await persist(
                self._clock,
                "the rollback's outcome",
                lambda: self._store.finish_action(
                    d.window.id,
                    ROLLBACK,
                    status=ActionStatus.SUCCEEDED if ok else ActionStatus.FAILED,
                    at=now,
                    detail=detail,
                    token=token,
                ),
            )
        except FencedOut as exc:
            if self._deposed is not None:
                await self._deposed.refused(d.window, exc, doing="recording the outcome", at=now)
            return None
        # A rollback that worked is confirmed: the restored version is watched for the
        # window's confirm_for (watchdog/confirm.py) before the window ends.
        phase = after_success(d.window) if ok else WindowPhase.ROLLBACK_FAILED
        await self._store.set_phase(
            d.window.id, phase, at=now, reason=detail, expected={WindowPhase.ROLLING_BACK}
        )
        window = d.window.with_phase(phase, now, detail)
        if self._metrics is not None:
            result = WindowPhase.ROLLED_BACK if ok else WindowPhase.ROLLBACK_FAILED
            self._metrics.rollback(window.deployment.service, result.value)
        data: dict[str, object] = {"actor": d.actor}
        if ok:
            kind = EventKind.ROLLBACK_SUCCEEDED
            message, more = succeeded(window, d.trigger)
            data.update(more)
        else:
            kind, message = EventKind.ROLLBACK_FAILED, f"rollback failed: {detail}"
        event = await self._journal.record(window, kind, message, at=now, data=data, notify=False)
        return d.but(window=window, events=(*d.events, event))

    async def _carried(self, token: int) -> int:
        if self._coordinator is None:
            return token
        return await self._coordinator.carry(token) or token  # else the store refuses it


class Notify:
    """Tell people how it ended (other events are told as they are journaled)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def __call__(self, d: Decision) -> Decision | None:
        """Hand the outcome events to the notifier, without waiting for delivery."""
        for event in d.events:
            self._journal.notify(event, d.window)
        return d
