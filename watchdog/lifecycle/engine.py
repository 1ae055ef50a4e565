"""The watch loop: ``tick()`` evaluates every due rule of every open window.

APScheduler only calls :meth:`Engine.tick`. A tick starts one task per due
(window, rule) and returns at once, so a slow source delays only its own rule; a rule
still in flight is not started again.

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
from watchdog.lifecycle.evaluator import Evaluating
from watchdog.lifecycle.milestones import Milestones
from watchdog.lifecycle.openwindows import WindowView
from watchdog.lifecycle.schedule import Key, Schedule
from watchdog.lifecycle.sourcewatch import SourceWatch
from watchdog.pipeline import Pipeline
from watchdog.pipeline.handoff import Handoff
from watchdog.plumbing.logs import tag_task
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
        watched = {}
        for window in windows:
            if await self._close_if_due(window, now):
                continue
            self._open[window.phase.value] += 1
            await self.milestones.midpoint(window, now, self.states)
            await self._load_states(window.id)
            watched[window.id] = self.schedule.plan(window, self.rules.current)
        for at, window, rule in self.schedule.due(watched, now, self._inflight):
            self._start(window, rule, now, at)
        self.ticks += 1

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
        task.add_done_callback(functools.partial(self._finished, key))

    def _finished(self, key: Key, _task: asyncio.Task[None]) -> None:
        self._inflight.pop(key, None)
        self.schedule.finished(key)

    async def _evaluate_guarded(self, window: Window, rule: AnyRule) -> None:
        # Its own task, so its own copy of the context: the tags go on every line this
        # evaluation logs (the source's, the journal's, the decision's) and nothing else
        d = window.deployment
        tag_task(window=window.id, service=d.service, version=d.version, rule=rule.name)
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
        self.milestones.forget(window_id)
        self.sources_watch.forget(window_id)
        self.schedule.forget(window_id)

    async def _close_if_due(self, window: Window, now: float) -> bool:
        """Close a window whose time is up (watchdog/lifecycle/endings.py), or judge its
        confirmation."""
        until = window.confirm_until
        if now < (window.ends_at if until is None else until):
            return False
        states = await self.states(window.id)
        if until is None:
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
