"""The watch loop: ``tick()`` evaluates every due rule of every open window.

APScheduler only calls :meth:`Engine.tick`. A tick starts one task per due (window,
rule), or per :data:`GROUP` windows of a ``shared_by`` rule (one answer serves them),
and returns at once: a slow source delays only its own rule; one in flight is not
started again.

With several replicas only the leader evaluates (and so journals transitions and
milestones, once); the others keep counting open windows and forget their caches, so a
replica taking over reads rule states (``for`` progress) from the store. The leader
also runs the manual rollbacks other replicas handed to it (``pipeline/handoff.py``).
Tests call ``await engine.tick()`` then ``await engine.drain()`` with a fake clock:
nothing sleeps.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    RuleState,
    Window,
)
from watchdog.ha.coord import Coordinator
from watchdog.lifecycle.confirm import Confirmation
from watchdog.lifecycle.evaluator import Evaluating, tag
from watchdog.lifecycle.milestones import Milestones
from watchdog.lifecycle.openwindows import WindowView
from watchdog.lifecycle.schedule import Key, Plan, Schedule, Start
from watchdog.lifecycle.sourcewatch import SourceWatch
from watchdog.pipeline import Pipeline
from watchdog.pipeline.handoff import Handoff
from watchdog.plumbing.metrics import Metrics
from watchdog.rulefile.load import AnyRule, RuleSet
from watchdog.sources import Sources
from watchdog.store.base import (
    ActionStore,
    EventStore,
    RuleStateStore,
    WindowStore,
)
from watchdog.store.batch import WriteBatcher
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.engine")

# Windows evaluated in one task for a ``shared_by`` rule (Evaluating.evaluate_many): enough
# to share a task's cost, few enough that one holds the loop ~10 ms at most.
GROUP = 100


class EngineStore(WindowStore, RuleStateStore, EventStore, ActionStore, Protocol):
    """What the engine, its parts and the window service use; the action log for the
    rollbacks handed to the leader (``pipeline/handoff.py``)."""


@dataclass
class RuleBook:
    """The rule set in force; replaced whole on reload (build-then-swap)."""

    current: RuleSet


@dataclass(frozen=True)
class EngineParts:
    """What the engine works with besides the store, the sources and the pipeline; the
    composition root builds them (``watchdog/parts.py``) and shares the view and the
    handoff with the window service."""

    sources_watch: SourceWatch  # "watchdog blind" once per outage; selectors matching nothing
    milestones: Milestones
    confirmation: Confirmation
    handoff: Handoff  # manual rollbacks other replicas hand to the leader
    writes: WriteBatcher  # states and points of many evaluations at once
    view: WindowView  # the evaluating windows, without reading all


class Engine(Evaluating):
    """Evaluates rules of open windows and hands firing ones to the pipeline."""

    def __init__(
        self,
        *,
        store: EngineStore,
        sources: Sources,
        rules: RuleBook,
        pipeline: Pipeline,
        journal: Journal,
        clock: Clock,
        parts: EngineParts,
        metrics: Metrics | None = None,
        variables: Mapping[str, str] | None = None,
        coordinator: Coordinator | None = None,  # None: this engine always leads
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.sources = sources
        self.rules = rules
        self.pipeline = pipeline
        self.journal = journal
        self.clock = clock
        self.variables = dict(variables or {})  # settings rule templates read, e.g. service_label
        self.sources_watch = parts.sources_watch
        self.milestones = parts.milestones
        self.confirmation = parts.confirmation
        self.handoff = parts.handoff
        self.writes = parts.writes
        self.view = parts.view
        self._states: dict[str, dict[str, RuleState]] = {}
        self._vars: dict[str, Mapping[str, str]] = {}
        self.schedule = Schedule()  # when each (window, rule) is next due
        self._inflight: dict[Key, asyncio.Task[None]] = {}
        self.ticks = 0  # completed ticks: what tests and diagnostics wait on, not the clock
        self._decisions: set[asyncio.Task[Any]] = set()
        self._open: dict[str, int] = {}
        self.coordinator = coordinator
        self._led = False

    # --- the loop -------------------------------------------------------------------
    async def tick(self) -> None:
        """Close windows that ended and start evaluations that are due."""
        now = self.clock.now()
        leading = await self.leading()
        if leading and not self._led:
            self.view.invalidate()  # a new leader reads what the old one changed
        self._led = leading
        windows = await self.view.current()
        self._open = dict.fromkeys(sorted(p.value for p in EVALUATING_PHASES), 0)
        if not leading:
            self._standby(windows)
            return
        for d in await self.handoff.take(now):
            self.decide_soon(d)
        self._start_due(await self._watched(windows, now), now)
        self.ticks += 1

    async def _watched(self, windows: list[Window], now: float) -> dict[str, Plan]:
        """Close the windows whose time is up; the plans of the others."""
        watched = {}
        ruleset = self.rules.current
        for window in windows:  # 10,000 a second: nothing awaited that has nothing to do
            if now >= _ends(window) and await self._close_if_due(window, now):
                continue
            self._open[window.phase] += 1  # a StrEnum finds its value's key
            if self.milestones.midpoint_due(window, now):
                await self.milestones.midpoint(window, now, self.states)
            if window.id not in self._states:
                await self._load_states(window.id)
            watched[window.id] = self.schedule.plan(window, ruleset)
        return watched

    def _start_due(self, watched: dict[str, Plan], now: float) -> None:
        """Start what is due, a ``shared_by`` rule's windows in groups."""
        shared: dict[str, list[Start]] = {}
        for start in self.schedule.due(watched, now, self._inflight):
            if getattr(start[2], "shared_by", None):
                shared.setdefault(start[2].name, []).append(start)
            else:
                self._start(start[1], start[2], now, start[0])
        for starts in shared.values():
            for i in range(0, len(starts), GROUP):
                self._start_group(starts[i : i + GROUP], now)

    async def leading(self) -> bool:
        """True when this replica may evaluate and act (it holds a fencing token)."""
        return self.coordinator is None or await self.coordinator.token() is not None

    def _standby(self, windows: list[Window]) -> None:
        # A follower counts windows for /metrics and forgets what it cached: when it
        # takes over, states come from the store the leader kept saving.
        for window in windows:
            self._open[window.phase.value] += 1
        for window_id in list(self._states):
            self.forget(window_id)

    def open_windows(self) -> dict[str, int]:
        """Windows still watched, by phase, as the last tick saw them (for /metrics)."""
        return dict(self._open)

    async def drain(self) -> None:
        """Wait until every evaluation and decision in flight has finished."""
        while self._inflight or self._decisions:
            pending = [*self._inflight.values(), *self._decisions]
            await asyncio.gather(*pending, return_exceptions=True)
        await self.journal.drain()

    async def evaluate_now(self, window: Window, rules: Iterable[AnyRule]) -> None:
        """Evaluate ``rules`` of ``window`` now, ahead of their interval (an alert came in).

        A rule already in flight may have sampled before the news: it is made due again,
        so the next tick runs it.
        """
        if not await self.leading():
            return  # the leader evaluates them at their interval
        await self._load_states(window.id)
        now = self.clock.now()
        for rule in rules:
            key = (window.id, rule.name)
            if key in self._inflight:
                self.schedule.run_again(key, now)  # a tick after it ends runs it
            else:
                self._start(window, rule, now, now)

    def _start(self, window: Window, rule: AnyRule, now: float, due: float | None) -> None:
        key = (window.id, rule.name)
        self.schedule.started(key, due, now, rule.effective_interval)
        task = asyncio.create_task(self._evaluate_guarded(window, rule))
        self._inflight[key] = task
        task.add_done_callback(functools.partial(self._finished, [key]))

    def _start_group(self, starts: list[Start], now: float) -> None:
        rule = starts[0][2]
        # kept in _inflight under each of its keys (a store ruff's check cannot see)
        group = asyncio.create_task(self.evaluate_many([w for _, w, _ in starts], rule))  # noqa: RUF006
        keys = [(window.id, rule.name) for _, window, _ in starts]
        for key, (due, _, _) in zip(keys, starts, strict=True):
            self.schedule.started(key, due, now, rule.effective_interval)
            self._inflight[key] = group
        group.add_done_callback(functools.partial(self._finished, keys))

    def _finished(self, keys: list[Key], _task: asyncio.Task[None]) -> None:
        for key in keys:
            self._inflight.pop(key, None)
            self.schedule.finished(key)

    async def _evaluate_guarded(self, window: Window, rule: AnyRule) -> None:
        # Its own task, so its own copy of the context: the tags go on this evaluation's
        # lines and nothing else
        tag(window, rule)
        try:
            await self.evaluate_rule(window, rule)
        except Exception:
            # An evaluation bug must never stop the loop; it is logged with its rule.
            log.exception("evaluation failed")

    # --- window bookkeeping -------------------------------------------------------------
    async def _load_states(self, window_id: str) -> None:
        if window_id not in self._states:
            self._states[window_id] = await self.store.load_rule_states(window_id)

    async def states(self, window_id: str) -> dict[str, RuleState]:
        """Rule states of a window (cached while it is open)."""
        if window_id in self._states:
            return dict(self._states[window_id])
        return dict(await self.store.load_rule_states(window_id))

    def reset_rules(self, names: Iterable[str]) -> None:
        """Drop the state of rules a reload changed or removed, in every open window.

        A changed rule starts its ``for`` afresh; unchanged ones keep theirs.
        """
        gone = set(names)
        self.sources_watch.drop_rules(gone)
        for states in self._states.values():
            for name in gone:
                states.pop(name, None)
        self.schedule.drop_rules(gone)

    def forget(self, window_id: str) -> None:
        """Drop in-memory state of a window that closed."""
        self.view.drop(window_id)
        self._states.pop(window_id, None)
        self._vars.pop(window_id, None)
        self.milestones.forget(window_id)
        self.sources_watch.forget(window_id)
        self.schedule.forget(window_id)

    async def _close_if_due(self, window: Window, now: float) -> bool:
        """Close a window whose time is up (watchdog/lifecycle/endings.py), or judge its
        confirmation."""
        if now < _ends(window):
            return False
        states = await self.states(window.id)
        if window.confirm_until is None:
            # only the rules that fit the deploy decide (a scoped-out rule never ran)
            fitting = self.rules.current.for_deployment(window.deployment)
            closed = await self.milestones.close(window, now, states, fitting)
        else:
            standing = [r.name for r in self.rules.current.rules if getattr(r, "standing", False)]
            closed = await self.confirmation.finish(window, now, states, standing)
        if closed:
            self.forget(window.id)
            if self.metrics is not None:
                self.metrics.windows_closed.labels(closed).inc()
        return True


def _ends(window: Window) -> float:
    """When a window's watch (or its confirmation, once confirming) is up."""
    return window.ends_at if window.confirm_until is None else window.confirm_until
