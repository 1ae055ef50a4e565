"""What people can do with windows: open, inspect, hold, resume, roll back, abort.

:class:`WindowService` implements the web layer's ``Controller`` port on top of the
engine, the store and the journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

import structlog

from watchdog.actions.spec import Plan, plan_for
from watchdog.admission import Admission, KnownVersions, pending_rollback
from watchdog.capacity import WindowLimit
from watchdog.engine import Engine
from watchdog.errors import Conflict, NotFound, Queued, Refused
from watchdog.judge.words import judge_view
from watchdog.model import (
    EVALUATING_PHASES,
    Action,
    Deployment,
    EventKind,
    RuleState,
    SampleKind,
    Window,
    WindowPhase,
    new_id,
)
from watchdog.pipeline import Decision
from watchdog.pipeline.stages import ROLLBACK
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import AnyRule
from watchdog.units import rule_unit
from watchdog.web.control import RuleView, WindowDetail
from watchdog.wording import cannot

log = structlog.get_logger("watchdog.windows")

SETTLE_TIMEOUT = 5.0  # how long a manual rollback request waits to see its claim land


class WindowService:
    """The Controller: every request people make about windows comes through here."""

    def __init__(
        self,
        engine: Engine,
        *,
        default_window: float,
        supersede: bool = True,
        plans: Mapping[str, Plan] | None = None,
        default_plan: str | None = None,
        shadow: bool = False,
        confirm_for: float = 0.0,
        shadow_services: Sequence[str] = (),
        known: KnownVersions | None = None,
        limit: WindowLimit | None = None,
    ) -> None:
        self._engine = engine
        self._admission = Admission(plans or {}, known, engine.store, engine.journal, engine.clock)
        self._shadow = shadow  # the global setting: every window opens in shadow
        self._shadow_services = tuple(shadow_services)  # ... or those of these services
        self._confirm_for = confirm_for  # after a rollback, unless the plan or deploy says
        self._limit = limit
        self._opening = asyncio.Lock()  # check the limit and insert as one step
        self._plans = plans or {}
        self._default_plan = default_plan
        self._store = engine.store
        self._journal = engine.journal
        self._clock = engine.clock
        self._default_window = default_window
        self._supersede = supersede

    async def open_window(
        self,
        deployment: Deployment,
        *,
        window_seconds: float | None,
        actor: str,
        shadow: bool = False,
        confirm_for: float | None = None,
        force: bool = False,
    ) -> Window:
        """Open a window: supersede the service's open one, capture baselines.

        ``shadow`` (or the global setting) makes the window act on nothing by itself;
        ``confirm_for`` overrides the plan's and the setting's confirmation time.
        :class:`Refused` (422) for an unknown plan, and for a ``previous_version`` never
        seen running for the service unless ``force`` (journaled either way).
        Past ``max_open_windows`` it raises Overloaded (429) and changes nothing.
        """
        # The window names the plan that will run, the default included, from the start.
        deployment = replace(deployment, plan=deployment.plan or self._default_plan)
        deployment, inferred = await self._admission.previous(deployment)
        unseen = await self._admission.check(deployment, actor=actor, force=force)
        if shadow and not force and (armed := await pending_rollback(self._store, deployment)):
            raise Refused(
                f"{deployment.service} has a rollback pending in window {armed.id}: a shadow "
                "deployment would disarm it; send force: true to do so anyway",
                field="shadow",
            )
        async with self._opening:
            if self._limit is not None:
                await self._limit.check(deployment, actor=actor)  # Overloaded: nothing changed
            now = self._clock.now()
            length = window_seconds or self._default_window
            window = Window(
                new_id(),
                deployment,
                WindowPhase.WATCHING,
                now,
                now + length,
                now,
                shadow=shadow or self._shadow_for(deployment.service),
                confirm_for=self._confirmation(deployment, confirm_for),
            )
            if self._supersede:
                await self._supersede_open(deployment, window, now)
            await self._store.insert_window(window)
        await self._journal.record(
            window,
            EventKind.WINDOW_OPENED,
            f"watching {deployment.service} {deployment.version} in {deployment.environment} "
            f"for {length:g}s ({len(self._engine.rules.current.for_deployment(deployment))} rules)"
            + (" in shadow: nothing will act on its own" if window.shadow else "")
            + (unseen.text if unseen else "")
            + (f"; previous version {deployment.previous_version}: {inferred}" if inferred else ""),
            at=now,
            data={
                "actor": actor,
                "previous_version": deployment.previous_version,
                "shadow": window.shadow,
                "confirm_for": window.confirm_for,
                "plan": deployment.plan,
                **(unseen.data if unseen else {}),
                **({"previous_version_from": inferred} if inferred else {}),
            },
        )
        baselines = await self._capture_baselines(window)
        if baselines:
            await self._store.set_baselines(window.id, baselines)
            window = await self._get(window.id)
        return window

    def _shadow_for(self, service: str) -> bool:
        return self._shadow or any(fnmatchcase(service, g) for g in self._shadow_services)

    def _confirmation(self, deployment: Deployment, asked: float | None) -> float:
        """How long a rollback's recovery is watched: asked, else the plan's, else default."""
        if asked is not None:
            return asked
        plan = self._plans.get(deployment.plan or self._default_plan or "")
        if plan is not None and plan.confirm_for is not None:
            return plan.confirm_for
        return self._confirm_for

    async def _supersede_open(self, deployment: Deployment, new: Window, now: float) -> None:
        olds = await self._store.list_windows(
            service=deployment.service,
            environment=deployment.environment,
            phases=EVALUATING_PHASES,
        )
        for old in olds:
            moved = await self._store.set_phase(
                old.id,
                WindowPhase.SUPERSEDED,
                at=now,
                reason=f"superseded by {new.id} ({deployment.version})",
                expected=EVALUATING_PHASES,
            )
            if moved:
                await self._journal.record(
                    old,
                    EventKind.WINDOW_SUPERSEDED,
                    f"superseded by deployment of {deployment.version} ({new.id})",
                    at=now,
                    data={"by": new.id},
                )
                self._engine.forget(old.id)

    async def _capture_baselines(self, window: Window) -> dict[str, dict[str, float]]:
        chosen = self._engine.rules.current.for_deployment(window.deployment)
        rules = [r for r in chosen if r.baseline is not None]
        samples = await asyncio.gather(*(self._baseline(window, r) for r in rules))
        out = {rule.name: got[0] for rule, got in zip(rules, samples, strict=True) if got[0]}
        for rule, (values, why) in zip(rules, samples, strict=True):
            if values:
                text = "baseline for {}: {}".format(
                    rule.name, ", ".join(f"{k}={v:.4g}" for k, v in values.items())
                )
            else:
                text = f"baseline for {rule.name} unavailable ({why}): {_fallback(rule)}"
            await self._journal.record(
                window,
                EventKind.BASELINE_CAPTURED,
                text,
                at=self._clock.now(),
                rule=rule.name,
                data={"values": values or {}},
                notify=False,
            )
        return out

    async def _baseline(self, window: Window, rule: AnyRule) -> tuple[dict[str, float], str]:
        """The baseline values by series key, or nothing and why."""
        assert rule.baseline is not None
        query = rule.baseline.query or getattr(rule, "query", None)
        if isinstance(rule, JudgeRule):
            probe: AnyRule = rule.baseline_probe()  # its `query` is computed, not a field
        else:
            probe = rule.model_copy(update={"query": query}) if query else rule
        at = window.started_at - rule.baseline.offset
        sample = await self._engine.sample(window, probe, at, live=False)
        if sample.kind is SampleKind.ERROR:
            return {}, f"error: {sample.error}"
        values = {s.key: s.value for s in sample.series if s.value == s.value}
        return values, "no data before the deploy"

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
        for rule in self._engine.rules.current.for_deployment(window.deployment):
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
        return await self._get(window_id)

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
        _, plan = plan_for(window.deployment, self._plans, self._default_plan)
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
            handoff = self._engine.handoff
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


def _fallback(rule: AnyRule) -> str:
    """What a rule is judged on when its baseline could not be captured."""
    assert rule.baseline is not None
    if isinstance(rule, JudgeRule):  # its threshold is a placeholder: the limit decides
        if rule.floor > 0 or rule.ceiling is not None:
            bound = f"floor {100 * rule.floor:g}%" if rule.floor > 0 else ""
            bound = bound or f"ceiling {100 * (rule.ceiling or 0):g}%"
            return f"judged against its {bound} (or the previous version beside it)"
        return "judged against the previous version beside it, else inconclusive"
    if rule.baseline.fallback is not None:
        threshold = rule.threshold.describe(rule.baseline.fallback)
        return f"using the fallback baseline {rule.baseline.fallback:g}: {threshold}"
    absolute = " and ".join(c.describe() for c in rule.threshold.absolute)
    if absolute:
        return f"using the absolute threshold {absolute}"
    return "the rule stays inconclusive in this window"


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
