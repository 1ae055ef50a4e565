"""Resuming rollbacks that a crash interrupted.

A rollback leaves a trail before every effect: the action-log claim (Fence), the window
moved to ``rolling_back``, a ``step_started`` intent before each attempt, then
``step_succeeded``/``step_failed`` after it (Act), and finally the action's outcome and
the terminal phase (Record). At startup the leader reads that trail for every window
whose rollback was claimed but not finished, and carries on from where it stopped:

- claimed, window not yet ``rolling_back``: move it there, journal ``rollback_started``
  (so people hear of it) and run the plan from its first step;
- steps succeeded are never run again: the plan resumes at the first step without a
  recorded success;
- a step whose intent is journaled but whose outcome is not is run again at once if it
  is safe to repeat (``Step.safe_to_repeat``: verify steps, and steps the plan declares
  ``idempotent: true``); otherwise it asks its own evidence first (``pipeline/evidence.py``:
  its result journaled late by the replica that ran it, the target's version). Only
  when nobody can say is it *in doubt*: the window ends ``rollback_failed`` with
  "verify manually", and that is notified;
- a step whose last attempt failed for good: the window ends ``rollback_failed``;
- action finished but the window still ``rolling_back``: only the recording is redone.

Only a replica holding a fencing token (the leader) resumes anything, and never a
window this process is deciding about right now (``ha/inflight.py``): a lease re-taken
by this same replica leaves its running rollbacks running. Besides every new lease, the
leader re-drives (:meth:`Recovery.sweep`, every tick) each ``rolling_back`` window that
nothing here runs: a rollback paused by a store outage resumes when the store answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from watchdog.actions.plan import PlanOutcome
from watchdog.actions.spec import Plan
from watchdog.foundation.clock import Clock
from watchdog.foundation.model import (
    Action,
    ActionRecord,
    ActionStatus,
    Event,
    EventKind,
    Window,
    WindowPhase,
)
from watchdog.ha.coord import Coordinator, LeadershipLost, PlanPaused
from watchdog.ha.inflight import InFlight
from watchdog.pipeline.act import Act
from watchdog.pipeline.base import Decision
from watchdog.pipeline.evidence import Evidence, Verdict
from watchdog.pipeline.record import Record
from watchdog.pipeline.stages import ACTABLE, ROLLBACK, Fence, Notify
from watchdog.store.base import ActionStore, EventStore, WindowStore
from watchdog.store.feed import PhaseJournal
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.ha.recovery")

RESUMABLE = ACTABLE | {WindowPhase.ROLLING_BACK}
_STEP_KINDS = {EventKind.STEP_STARTED, EventKind.STEP_SUCCEEDED, EventKind.STEP_FAILED}


class RecoveryStore(WindowStore, ActionStore, EventStore, PhaseJournal, Protocol):
    """What recovery reads: open windows, their action log entries and journals (and
    what the stages it runs write)."""


@dataclass(frozen=True)
class Progress:
    """Where a plan stopped: the first step to run, and the step in doubt, if any."""

    start_at: int
    in_doubt: str | None = None
    failed: str | None = None  # the step's last attempt failed for good: why


def progress(plan: Plan, events: Sequence[Event]) -> Progress:
    """Read a window's journal: the first step without a recorded success.

    That step is in doubt when the last thing journaled about it is its intent.
    """
    last: dict[str, Event] = {}
    for event in events:
        if event.kind in _STEP_KINDS:
            last[str(event.data.get("step"))] = event
    for index, step in enumerate(plan.steps):
        seen = last.get(step.name)
        kind = seen.kind if seen is not None else None
        if kind is EventKind.STEP_SUCCEEDED:
            continue
        if seen is not None and kind is EventKind.STEP_FAILED and _for_good(seen):
            return Progress(index, failed=str(seen.data.get("output") or seen.message))
        return Progress(index, step.name if kind is EventKind.STEP_STARTED else None)
    return Progress(len(plan.steps))


def _for_good(failed: Event) -> bool:
    return failed.data.get("transient") is False


class Recovery:
    """Finds unfinished rollbacks and finishes them (see the module docstring).

    Composed by :func:`watchdog.pipeline.build.build_pipeline` with the live path's own
    Fence (how a rollback begins), Act, Record and Notify stages.
    """

    def __init__(
        self,
        *,
        store: RecoveryStore,
        journal: Journal,
        coordinator: Coordinator,
        fence: Fence,
        act: Act,
        record: Record,
        notify: Notify,
        clock: Clock,
        inflight: InFlight | None = None,
        evidence: Evidence | None = None,
        note: Callable[[], str | None] | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._coordinator = coordinator
        self._fence = fence
        self._act = act
        self._record = record
        self._notify = notify
        self._clock = clock
        self._inflight = inflight or InFlight()
        self._note = note or (lambda: None)
        self._evidence = evidence or Evidence(store, clock, act.check, wait=False)
        self._lock = asyncio.Lock()  # one pass at a time: a re-acquired lease starts another

    async def run(self) -> int:
        """Resume every unfinished rollback; returns how many were picked up."""
        async with self._lock:
            return await self._run(RESUMABLE)

    async def sweep(self) -> int:
        """The leader's re-drive: resume ``rolling_back`` windows that nothing here runs
        (a pass already under way is enough). Store errors propagate to the caller."""
        if self._lock.locked() or await self._coordinator.token() is None:
            return 0
        async with self._lock:
            return await self._run(frozenset({WindowPhase.ROLLING_BACK}), quiet=True)

    async def _run(self, phases: frozenset[WindowPhase], *, quiet: bool = False) -> int:
        token = await self._coordinator.token()
        if token is None:
            if not quiet:
                log.warning("not the leader: leaving unfinished rollbacks to the leader")
            return 0
        resumed = 0
        for window in await self._store.list_windows(phases=phases, limit=100_000):
            if self._inflight.busy(window.id):
                continue  # running here: not interrupted (a lease re-taken by us)
            action = await self._store.get_action(window.id, ROLLBACK)
            if action is None:
                continue
            try:
                with self._inflight.running(window.id):
                    await self._resume(window, action, token)
                resumed += 1
            except (LeadershipLost, PlanPaused) as exc:
                log.warning("stopped resuming; it resumes later", window=window.id, why=str(exc))
                return resumed
            except Exception:
                if quiet:
                    raise  # the re-drive's caller says it once per outage (ha/health.py)
                log.exception("could not resume a rollback", window=window.id)
        return resumed

    async def _resume(self, window: Window, action: ActionRecord, token: int) -> None:
        now = self._clock.now()
        trigger = action.actor.removeprefix("rule:") if action.actor.startswith("rule:") else None
        d = Decision(
            window=window,
            action=Action.ROLLBACK,
            trigger=trigger or "manual",
            actor=action.actor,
            reason="resumed after a restart",
            at=now,
            token=token,
        )
        if action.status is not ActionStatus.CLAIMED:
            if window.phase is WindowPhase.ROLLING_BACK:  # only the recording was lost
                ok = action.status is ActionStatus.SUCCEEDED
                await self._finish(d.but(outcome=PlanOutcome(ok=ok, error=action.detail)))
            return
        d = await self._rolling_back(d)
        d = await self._run_rest(d)
        await self._finish(d)

    async def _rolling_back(self, d: Decision) -> Decision:
        """Make sure the window is ``rolling_back`` and its journal says the rollback started."""
        events = await self._store.list_events(d.window.id)
        started = any(e.kind is EventKind.ROLLBACK_STARTED for e in events)
        d = await self._fence.begin(d, announce=not started)
        return d.but(events=tuple(events))

    async def _run_rest(self, d: Decision) -> Decision:
        plan = self._act.plan_of(d.window)
        if plan is None:
            return await self._act.resume(d, 0)  # says which plan is missing
        where = await self._settle_doubt(d, plan, progress(plan, d.events), d.events)
        d = d.but(events=())
        step = plan.steps[where.start_at] if where.start_at < len(plan.steps) else None
        if step is not None and where.failed is not None:
            failed = PlanOutcome(ok=False, failed_step=step.name, error=where.failed)
            return d.but(outcome=failed)
        if step is not None and where.in_doubt is not None and not step.safe_to_repeat:
            error = (
                f"step {step.name} was running when its leader stopped and its outcome is "
                "unknown (no result, no version to check); it is not idempotent, so it was "
                "not run again: verify manually"
            )
            failed = PlanOutcome(ok=False, failed_step=step.name, error=error)
            return d.but(outcome=failed)
        await self._journal.record(
            d.window,
            EventKind.ROLLBACK_RESUMED,
            f"resuming the rollback ({self._note() or 'after a restart'}) at step "
            f"{where.start_at + 1} of {len(plan.steps)}"
            + (f" ({where.in_doubt} in doubt: safe to repeat)" if where.in_doubt else ""),
            at=d.at,
            data={"start_at": where.start_at, "in_doubt": where.in_doubt},
            notify=False,
        )
        return await self._act.resume(d, where.start_at)

    async def _settle_doubt(
        self, d: Decision, plan: Plan, where: Progress, events: Sequence[Event]
    ) -> Progress:
        """Ask the evidence of each step in doubt (a deposed leader may have gone on)."""
        for _ in plan.steps:
            if where.in_doubt is None or plan.steps[where.start_at].safe_to_repeat:
                return where  # nothing in doubt, or safe to run again: no need to wait
            verdict = await self._evidence.ask(d.window, plan, where.start_at, events)
            if verdict.done is not True:
                return await self._weigh(d, where, verdict)
            await self._weigh(d, where, verdict)
            events = await self._store.list_events(d.window.id)
            where = progress(plan, events)
        return where

    async def _weigh(self, d: Decision, where: Progress, verdict: Verdict) -> Progress:
        """Turn the evidence about the step in doubt into where the plan goes on."""
        if verdict.done is None:
            return where
        name = where.in_doubt
        if verdict.done and verdict.record:
            await self._journal.record(
                d.window,
                EventKind.STEP_SUCCEEDED,
                f"step {name} took effect ({verdict.how})",
                at=self._clock.now(),
                data={"step": name, "evidence": verdict.how},
                notify=False,
            )
        if verdict.done:
            return Progress(where.start_at + 1)
        if verdict.transient:
            return Progress(where.start_at)  # failed for now: run it again
        return Progress(where.start_at, failed=verdict.error)

    async def _finish(self, d: Decision) -> None:
        recorded = await self._record(d)
        if recorded is not None:
            await self._notify(recorded)
        log.warning(
            "resumed an unfinished rollback",
            window=d.window.id,
            ok=d.outcome.ok if d.outcome else None,
        )
