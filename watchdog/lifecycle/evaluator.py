"""One evaluation of one rule of one window: sample, judge, store, journal, decide.

The :class:`~watchdog.lifecycle.engine.Engine` (the loop: what is due, when) starts each one in
its own task; this half is what such a task does. Split from :mod:`watchdog.lifecycle.engine` so
that scheduling and evaluating can be read apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import structlog

from watchdog.evaluation.coverage import counted
from watchdog.evaluation.evaluate import Evaluation, evaluate
from watchdog.foundation.clock import Clock
from watchdog.foundation.model import RuleState, Sample, SampleKind, Verdict, Window, WindowPhase
from watchdog.judge.evidence import point_evidence
from watchdog.lifecycle.confirm import restored_evidence
from watchdog.lifecycle.openwindows import WindowView
from watchdog.lifecycle.sourcewatch import SourceWatch, refused
from watchdog.lifecycle.transitions import decision_for, journal_transition
from watchdog.pipeline import Decision, Pipeline
from watchdog.plumbing.logs import tag_task
from watchdog.plumbing.metrics import Metrics
from watchdog.rulefile.load import AnyRule
from watchdog.sources import SampleContext, Sources
from watchdog.store.base import RulePoint
from watchdog.store.batch import Pending, WriteBatcher
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.engine")
_stdlib = logging.getLogger("watchdog.engine")


class Judged(NamedTuple):
    """One evaluation judged, its writes queued; what follows once they are stored."""

    window: Window
    rule: AnyRule
    sample: Sample
    previous: RuleState
    result: Evaluation
    now: float
    pending: Pending


def tag(window: Window, rule: AnyRule) -> None:
    """Tag the lines the evaluation of ``rule`` for ``window`` logs (the source's, the
    journal's, the decision's) with both."""
    d = window.deployment
    tag_task(window=window.id, service=d.service, version=d.version, rule=rule.name)


class Evaluating:
    """The engine's evaluation half (a mixin: the engine owns every attribute)."""

    sources: Sources
    metrics: Metrics | None
    pipeline: Pipeline
    journal: Journal
    clock: Clock
    variables: Mapping[str, str]
    sources_watch: SourceWatch
    writes: WriteBatcher
    view: WindowView
    _states: dict[str, dict[str, RuleState]]
    _vars: dict[str, Mapping[str, str]]  # template variables by window (live samples)
    _decisions: set[asyncio.Task[object]]

    async def leading(self) -> bool:
        """True when this replica may evaluate and act."""
        raise NotImplementedError

    async def sample(self, window: Window, rule: AnyRule, at: float, *, live: bool) -> Sample:
        """Ask the rule's source for a sample; never raises."""
        variables = self._vars.get(window.id) if live else None
        if variables is None:  # a window's deployment never changes: merged once
            variables = {**window.deployment.template_vars(), **self.variables}
            if live:
                self._vars[window.id] = variables
        # Live samples read only the window's own data (the restored version's, once it
        # is confirming: watchdog/lifecycle/confirm.py); baselines look back on purpose.
        since = window.evidence_since if live else None
        restored = live and window.phase is WindowPhase.CONFIRMING
        ctx = SampleContext(window.id, variables, at, live=live, since=since, restored=restored)
        started = time.monotonic()
        try:
            return await self.sources.get(rule.source).sample(rule, ctx)
        except Exception as exc:
            log.exception("source raised", source=rule.source, rule=rule.name)
            return Sample.failed(f"{type(exc).__name__}: {exc}", transient=False)
        finally:
            if self.metrics is not None:
                m = self.metrics
                m.child(m.source_seconds, rule.source).observe(time.monotonic() - started)

    async def evaluate_rule(self, window: Window, rule: AnyRule) -> Evaluation:
        """Sample, judge, persist, journal transitions, and decide when firing."""
        started = time.monotonic()
        sample = await self.sample(window, rule, self.clock.now(), live=True)
        judged = self._judge(window, rule, sample)
        await judged.pending.saved()
        self._observe(rule, sample, judged.result, time.monotonic() - started)
        return await self._follow_up(judged, await self.leading())

    async def evaluate_many(self, windows: Sequence[Window], rule: AnyRule) -> None:
        """Evaluate one rule for many windows in this task, each as :meth:`evaluate_rule`
        would, their writes stored together: a ``shared_by`` rule's windows read one
        answer, and a task, a write wait and a wake-up each cost them a quarter of an
        evaluation at 10,000 windows (bench/scale.py). A window's failure is its own."""
        judged: list[Judged] = []
        for window in windows:
            tag(window, rule)
            started = time.monotonic()
            try:
                sample = await self.sample(window, rule, self.clock.now(), live=True)
                judged.append(self._judge(window, rule, sample))
            except Exception:
                log.exception("evaluation failed")  # an evaluation bug never stops the rest
                continue
            self._observe(rule, sample, judged[-1].result, time.monotonic() - started)
        leading = await self.leading()
        for one in judged:
            tag(one.window, rule)
            try:
                await one.pending.saved()  # the first waits for the batch; the rest are in
                await self._follow_up(one, leading)
            except Exception:
                log.exception("evaluation failed")

    def _judge(self, window: Window, rule: AnyRule, sample: Sample) -> Judged:
        """Judge ``sample``, keep the new state and queue its writes (not yet stored)."""
        now = self.clock.now()
        states = self._states.setdefault(window.id, {})
        previous = restored_evidence(states.get(rule.name, RuleState()), window)
        result = evaluate(rule, previous, sample, now, window.baselines.get(rule.name))
        result = counted(previous, sample, result)  # judged or not: evaluation/coverage.py
        states[rule.name] = result.state
        # The per-evaluation series the status page and `deploy status` draw.
        point = RulePoint.of(now, result.value, result.verdict, point_evidence(result.state))
        pending = self.writes.queue(window.id, rule.name, result.state, point)
        return Judged(window, rule, sample, previous, result, now, pending)

    async def _follow_up(self, judged: Judged, leading: bool) -> Evaluation:
        """Once its state is stored: journal a transition, account the source, decide."""
        window, rule, sample, previous, result, now, _ = judged
        if _stdlib.isEnabledFor(logging.DEBUG):  # a structlog call costs even when filtered
            log.debug(
                "evaluated",
                window=window.id,
                rule=rule.name,
                verdict=result.verdict.value,
                value=result.value,
            )
        if not leading:
            return result  # deposed while sampling: the leader journals and decides
        if result.verdict is not previous.verdict:
            # the view may be seconds behind another replica: a window aborted there
            # a moment ago says nothing more
            current = await self.view.reread(window.id)
            if current is None:
                return result
            window = current
            await journal_transition(
                self.journal, window, rule, previous, result, now, self.variables
            )
        await self.sources_watch.after(window, rule, sample, result.state.failures, now)
        if result.verdict is Verdict.FIRING:
            await self.decide(decision_for(window, rule, result, now))
        return result

    def _observe(self, rule: AnyRule, sample: Sample, result: Evaluation, took: float) -> None:
        if self.metrics is None:
            return
        m = self.metrics
        m.child(m.evaluations, rule.name, result.verdict.value).inc()
        m.child(m.evaluation_seconds, rule.source).observe(took)
        if sample.kind is SampleKind.ERROR:
            m.child(m.source_errors, rule.source).inc()
            if refused(rule, sample):
                m.child(m.rule_errors, rule.name).inc()

    async def decide(self, decision: Decision) -> Decision | None:
        """Run a decision through the pipeline (awaited: callers are background tasks)."""
        try:
            return await self.pipeline.run(decision)
        finally:
            await self.view.reread(decision.window.id)  # its phase may have moved

    def decide_soon(self, decision: Decision) -> asyncio.Future[bool]:
        """Start a decision in the background; the future says whether it was claimed."""
        task = asyncio.create_task(self.decide(decision))
        self._decisions.add(task)
        task.add_done_callback(self._decisions.discard)
        return decision.settled
