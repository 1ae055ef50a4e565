"""Opening a window: admission, the window limit, supersede, baselines.

Split from :mod:`watchdog.lifecycle.windows` (what people do with open windows) because opening
is its own sequence: the deploy is admitted (:mod:`watchdog.deploys.admission`: plan, previous
version), counted against ``max_open_windows`` (:mod:`watchdog.deploys.capacity`), the service's
open window superseded, the new one stored and journaled, and its baselines captured.
The engine's view of the windows being watched learns of it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Protocol

from watchdog.actions.spec import Plan
from watchdog.deploys.admission import Admission, KnownVersions, pending_rollback
from watchdog.deploys.capacity import WindowLimit
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import NotFound, Refused
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    Deployment,
    EventKind,
    RuleState,
    Sample,
    SampleKind,
    Window,
    WindowPhase,
    new_id,
)
from watchdog.lifecycle.engine import EngineStore, RuleBook
from watchdog.lifecycle.openwindows import WindowView
from watchdog.pipeline import Decision
from watchdog.pipeline.handoff import Handoff
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import AnyRule
from watchdog.store.journal import Journal


class Watching(Protocol):
    """The engine operations that opening and managing windows need; the engine has them."""

    async def states(self, window_id: str) -> dict[str, RuleState]:
        """Rule states of a window."""
        ...

    def forget(self, window_id: str) -> None:
        """Drop what is kept in memory of a window that closed."""
        ...

    async def sample(self, window: Window, rule: AnyRule, at: float, *, live: bool) -> Sample:
        """Ask a rule's source for a sample (a baseline when not ``live``); never raises."""
        ...

    def decide_soon(self, decision: Decision) -> asyncio.Future[bool]:
        """Start a decision; the future says whether it was claimed."""
        ...


@dataclass(frozen=True)
class WindowParts:
    """What the window service and the opener work with, from the composition root."""

    store: EngineStore
    journal: Journal
    clock: Clock
    rules: RuleBook  # the engine's: a reload swaps the rule set in it
    view: WindowView  # the engine's view of the evaluating windows: told of each change
    handoff: Handoff  # the engine's: manual rollbacks this replica hands to the leader
    engine: Watching


class WindowOpener:
    """Opens windows; one at a time, so the limit check and the insert are one step."""

    def __init__(
        self,
        parts: WindowParts,
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
        self._parts = parts
        self._engine = parts.engine
        self._admission = Admission(plans or {}, known, parts.store, parts.journal, parts.clock)
        self._shadow = shadow  # the global setting: every window opens in shadow
        self._shadow_services = tuple(shadow_services)  # ... or those of these services
        self._confirm_for = confirm_for  # after a rollback, unless the plan or deploy says
        self._limit = limit
        self._opening = asyncio.Lock()  # check the limit and insert as one step
        self.plans = plans or {}  # also read by WindowService (which plan a rollback runs)
        self.default_plan = default_plan
        self._store = parts.store
        self._journal = parts.journal
        self._clock = parts.clock
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
        deployment = replace(deployment, plan=deployment.plan or self.default_plan)
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
            f"for {length:g}s ({len(self._parts.rules.current.for_deployment(deployment))} rules)"
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
            await self._store.set_baselines(window.id, baselines, at=self._clock.now())
            window = await self._get(window.id)
        self._parts.view.put(window)  # watched from the next tick, without a full read
        return window

    def _shadow_for(self, service: str) -> bool:
        return self._shadow or any(fnmatchcase(service, g) for g in self._shadow_services)

    def _confirmation(self, deployment: Deployment, asked: float | None) -> float:
        """How long a rollback's recovery is watched: asked, else the plan's, else default."""
        if asked is not None:
            return asked
        plan = self.plans.get(deployment.plan or self.default_plan or "")
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
        chosen = self._parts.rules.current.for_deployment(window.deployment)
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
