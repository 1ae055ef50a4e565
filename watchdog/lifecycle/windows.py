"""What people can do with windows: open, inspect, hold, resume, roll back, abort.

:class:`WindowService` implements the web layer's ``Controller`` port on top of the
store, the journal and the few engine operations in
:class:`~watchdog.lifecycle.opening.WindowParts`, which the composition root hands in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import structlog

from watchdog.actions.spec import plan_for
from watchdog.evaluation.wording import cannot
from watchdog.foundation.errors import Conflict, NotFound, Queued
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    Action,
    EventKind,
    RuleState,
    Window,
    WindowPhase,
)
from watchdog.judge.words import judge_view
from watchdog.lifecycle.control import RuleView, WindowDetail
from watchdog.lifecycle.opening import WindowOpener, WindowParts
from watchdog.pipeline import Decision
from watchdog.pipeline.stages import ROLLBACK
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import AnyRule
from watchdog.rulefile.units import rule_unit

log = structlog.get_logger("watchdog.windows")

SETTLE_TIMEOUT = 5.0  # how long a manual rollback request waits to see its claim land


class WindowService:
    """The Controller: every request people make about windows comes through here."""

    def __init__(self, parts: WindowParts, opener: WindowOpener) -> None:
        self.parts = parts  # what the root handed in (a test builds a second service on it)
        self._engine = parts.engine
        self._opener = opener  # opening is its own sequence: admission, limit, baselines
        self.open_window = opener.open_window
        self._store = parts.store
        self._journal = parts.journal
        self._clock = parts.clock

    async def _get(self, window_id: str) -> Window:
        window = await self._store.get_window(window_id)
        if window is None:
            raise NotFound(f"no deployment window {window_id!r}")
        return window

    async def detail(self, window_id: str) -> WindowDetail:
        """A window with each rule's state and the journal."""
        window = await self._get(window_id)
        states = await self._engine.states(window_id)
        views = []
        for rule in self.parts.rules.current.for_deployment(window.deployment):
            state = states.get(rule.name)
            base = window.baselines.get(rule.name) or {}
            baseline = next(iter(base.values())) if len(base) == 1 else None
            view = _view(rule, state, baseline)
            views.append(judge_view(view, rule, state) if isinstance(rule, JudgeRule) else view)
        events = await self._store.list_events(window_id)
        points = await self._store.list_rule_points(window_id)
        return WindowDetail(window, views, events, points)

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first."""
        windows = await self._store.list_windows(
            service=service, environment=environment, phases=phases, limit=limit
        )
        return list(windows)

    async def _move(
        self,
        window_id: str,
        phase: WindowPhase,
        expected: Collection[WindowPhase],
        kind: EventKind,
        message: str,
        actor: str,
        reason: str | None,
    ) -> Window:
        window = await self._get(window_id)
        now = self._clock.now()
        ok = await self._store.set_phase(window_id, phase, at=now, reason=reason, expected=expected)
        if not ok:
            current = await self._get(window_id)
            raise Conflict(cannot(window_id, current.phase, message))
        text = f"{actor}: {message}" + (f" ({reason})" if reason else "")
        await self._journal.record(
            window.with_phase(phase, now, reason), kind, text, at=now, data={"actor": actor}
        )
        moved = await self._get(window_id)
        self.parts.view.put(moved)  # held, resumed, aborted: the next tick knows
        return moved

    async def hold(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Veto automatic rollback; rules keep being evaluated."""
        expected = {WindowPhase.WATCHING, WindowPhase.AWAITING_APPROVAL}
        return await self._move(
            window_id, WindowPhase.HELD, expected, EventKind.HELD, "hold", actor, reason
        )

    async def resume(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Lift a hold: a rule still firing acts at its next evaluation."""
        return await self._move(
            window_id,
            WindowPhase.WATCHING,
            {WindowPhase.HELD},
            EventKind.RESUMED,
            "resume",
            actor,
            reason,
        )

    async def abort(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Stop watching without rolling back."""
        window = await self._move(
            window_id,
            WindowPhase.ABORTED,
            EVALUATING_PHASES,
            EventKind.WINDOW_ABORTED,
            "abort",
            actor,
            reason,
        )
        self._engine.forget(window_id)
        return window

    async def rollback(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Roll back now. Exactly once like any rollback; returns once it is claimed.

        On a window awaiting approval this is the approval, and journaled as one."""
        if (await self._get(window_id)).phase is WindowPhase.AWAITING_APPROVAL:
            return await self.approve(window_id, actor=actor, reason=reason)
        return await self._decide(window_id, Action.ROLLBACK, actor, reason, approved_by=None)

    async def approve(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """An approver allows a rollback that needs approval; it runs like any other."""
        window = await self._get(window_id)
        events = await self._store.list_events(window_id)
        asked = next((e for e in reversed(events) if e.kind is EventKind.APPROVAL_NEEDED), None)
        await self._journal.record(
            window,
            EventKind.APPROVED,
            f"{actor}: approved the rollback" + (f" ({reason})" if reason else ""),
            at=self._clock.now(),
            rule=asked.rule if asked is not None else None,
            # the approval answers this request: the page and the API link the two
            data={"actor": actor, "approval_needed": asked.seq if asked is not None else None},
        )
        return await self._decide(
            window_id, Action.APPROVE, actor, reason or f"approved by {actor}", approved_by=actor
        )

    async def acknowledge(self, window_id: str, *, actor: str) -> Window:
        """Someone is on it: journaled, and it stops escalation."""
        window = await self._get(window_id)
        await self._journal.record(
            window,
            EventKind.ACKNOWLEDGED,
            f"{actor}: acknowledged, on it",
            at=self._clock.now(),
            data={"actor": actor},
        )
        return window

    async def needs_approval(self, window_id: str) -> bool:
        """True when rolling this window back takes an approver (approve rule, risky plan)."""
        window = await self._get(window_id)
        _, plan = plan_for(window.deployment, self._opener.plans, self._opener.default_plan)
        risky = plan is not None and plan.data_loss_risk
        return risky or window.phase is WindowPhase.AWAITING_APPROVAL

    async def record_click(self, window_id: str, *, actor: str, action: str, outcome: str) -> None:
        """Journal a button click: who, what, when and what came of it."""
        window = await self._get(window_id)
        await self._journal.record(
            window,
            EventKind.INTERACTION,
            f"{actor} pressed {action}: {outcome}",
            at=self._clock.now(),
            data={"actor": actor, "action": action, "outcome": outcome},
            notify=False,
        )

    async def _decide(
        self,
        window_id: str,
        action: Action,
        actor: str,
        reason: str | None,
        *,
        approved_by: str | None,
    ) -> Window:
        window = await self._get(window_id)
        if window.phase not in EVALUATING_PHASES:
            raise Conflict(cannot(window_id, window.phase, "roll back"))
        decision = Decision(
            window=window,
            action=action,
            trigger="manual",
            actor=actor,
            reason=reason or f"manual rollback by {actor}",
            at=self._clock.now(),
            approved_by=approved_by,
        )
        settled = self._engine.decide_soon(decision)
        claimed = await asyncio.wait_for(asyncio.shield(settled), SETTLE_TIMEOUT)
        if not claimed:
            current = await self._get(window_id)
            if not await self._for_the_leader(current):
                raise Conflict(cannot(window_id, current.phase, "roll back"))
            # Only Fence stops a manual rollback of an open, unclaimed window: this
            # replica does not lead (or was just deposed). The leader runs it instead.
            handed = decision.but(window=current)
            handoff = self.parts.handoff
            if not await handoff.ask(handed, action=ROLLBACK, wait=SETTLE_TIMEOUT):
                raise Queued(
                    f"queued: the leader will roll back {window_id} within {handoff.within:g}s",
                    window=current,
                    within=handoff.within,
                )
        return await self._get(window_id)

    async def _for_the_leader(self, window: Window) -> bool:
        """True for an open window whose rollback nobody claimed: only Fence stopped it."""
        if window.phase not in EVALUATING_PHASES:
            return False
        return await self._store.get_action(window.id, ROLLBACK) is None


def _view(rule: AnyRule, state: RuleState | None, baseline: float | None) -> RuleView:
    s = state or RuleState()
    pending = min(s.pending_since.values()) if s.pending_since else None
    return RuleView(
        name=rule.name,
        group=rule.group,
        source=rule.source,
        action=rule.action.value,
        severity=rule.severity.value,
        threshold=rule.threshold.describe(baseline),
        for_seconds=rule.for_,
        interval_seconds=rule.effective_interval,
        verdict=s.verdict,
        last_value=s.last_value,
        worst_value=s.worst_value,
        pending_since=pending,
        last_eval_at=s.last_eval_at,
        baseline=baseline,
        reason=s.reason,
        threshold_value=rule.threshold.clauses[0].bound(baseline),
        shadow=rule.shadow,
        unit=rule_unit(rule),
        runbook_url=rule.labels.get("runbook_url"),
        judged=s.judged,
        evaluations=s.judged + s.unjudged,
        gaps=dict(s.gaps),
    )
