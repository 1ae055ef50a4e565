"""Backtesting: evaluate rule files over a past time range as if the window were live.

Each Prometheus rule's query is run as a range query (prometheus-api-client's
``custom_query_range``) stepped at the rule's interval from the range's start, which
gives the same value an instant query would have returned at each evaluation. Those
samples go through the pure :func:`watchdog.evaluation.evaluate.evaluate` in time order with the
same :class:`RuleState` threading the engine uses, so ``for``, ``no_data`` and
``on_error`` behave exactly as live. A ``rollback`` firing ends the replay (live, the
window would be rolling back and its rules stop); ``approve`` asks once; ``notify``
tells people at each transition into firing; a ``shadow`` rule says it would roll back
and the replay goes on, as the live window does. Rules whose source has no history (HTTP
probes) are reported as skipped.

As live, ranges never reach back before the deploy (``start``): while the window is
younger than a query's longest range, each evaluation's ranges are clamped to its age
(:mod:`watchdog.sources.window_range`), one range query per distinct clamped query
(at most ``MAX_CLAMPED_QUERIES`` per rule: the clamp then rounds up to a coarser grid).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from watchdog.evaluation.evaluate import evaluate
from watchdog.evaluation.replayfinal import ReplayEvent, ReplayResult, Tracker
from watchdog.evaluation.wording import describe
from watchdog.foundation.errors import WatchdogError
from watchdog.foundation.model import (
    Action,
    Deployment,
    RuleState,
    Sample,
    SampleKind,
    Series,
    Verdict,
    series_key,
)
from watchdog.rulefile.load import AnyRule, RuleSet
from watchdog.rulefile.template import promql_escape, render
from watchdog.sources.base import Replay
from watchdog.sources.kinds import kind
from watchdog.sources.promparse import RangeSeries
from watchdog.sources.window_range import clamp_ranges, longest_range

CHUNK_STEPS = 1000  # evaluations fetched per range query (Prometheus caps at 11000)
MAX_EVALUATIONS = 2_000_000
MAX_CLAMPED_QUERIES = 60  # per rule, for the window's first `range` seconds

Progress = Callable[[int, int], None]
__all__ = ["ReplayEvent", "ReplayResult", "Replayer", "count_evaluations", "grid"]


class RangeSource(Protocol):
    """What replay needs of a source with history: range queries."""

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` at ``start, start + step, …, end``."""
        ...


def replayable(rule: AnyRule) -> Replay | None:
    """How ``rule``'s history is read; None when its kind keeps none (HTTP probes)."""
    return kind(rule.source).replay


def grid(start: float, end: float, step: float) -> list[float]:
    """Evaluation times: ``start``, ``start + step``, … up to ``end``."""
    n = int((end - start) // step) + 1
    return [start + i * step for i in range(max(0, n))]


def count_evaluations(rules: RuleSet, start: float, end: float) -> int:
    """How many evaluations a replay of the range would make (to refuse absurd ranges)."""
    span = max(0.0, end - start)
    return sum(int(span // r.effective_interval) + 1 for r in rules.rules if replayable(r))


class Replayer:
    """Fetches each rule's history and walks it through evaluate()."""

    def __init__(
        self,
        source: RangeSource,
        *,
        upstreams: Mapping[str, RangeSource] | None = None,
        chunk_steps: int = CHUNK_STEPS,
        grid: float = 15.0,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        # Prometheus (``source``) and the other kinds' histories, by Replay.upstream.
        self._upstreams = {"prometheus": source, **(upstreams or {})}
        self._chunk = chunk_steps
        self._grid = grid  # the scrape interval clamped ranges round up to
        self._variables = dict(variables or {})  # settings templates read (service_label)

    async def run(
        self,
        rules: RuleSet,
        deployment: Deployment,
        start: float,
        end: float,
        progress: Progress | None = None,
    ) -> ReplayResult:
        """Replay ``rules`` over ``[start, end]`` for ``deployment``."""
        result = ReplayResult(start, end)
        variables = {**deployment.template_vars(), **self._variables}
        read = [r for r in rules.rules if self._why_not(r) is None]
        result.skipped = {r.name: why for r in rules.rules if (why := self._why_not(r))}
        chunks = {r.name: _chunks(start, end, r.effective_interval, self._chunk) for r in read}
        total, done = sum(len(c) for c in chunks.values()), 0
        timelines: list[Iterator[tuple[float, AnyRule, Sample]]] = []
        baselines: dict[str, dict[str, float]] = {}
        for rule in read:
            samples: list[tuple[float, AnyRule, Sample]] = []
            for chunk_start, chunk_end in chunks[rule.name]:
                samples += await self._fetch(rule, variables, start, (chunk_start, chunk_end))
                done += 1
                if progress is not None:
                    progress(done, total)
            baselines[rule.name] = await self._baseline(rule, variables, start)
            timelines.append(iter(samples))
            result.replayed.append(rule.name)
        merged = heapq.merge(*timelines, key=lambda s: s[0])
        _walk(merged, baselines, result)
        return result

    def _why_not(self, rule: AnyRule) -> str | None:
        """Why ``rule`` is not replayed (None: it is)."""
        spec = replayable(rule)
        if spec is None:
            return f"{rule.source} rules have no history to replay"
        if spec.upstream not in self._upstreams:
            return f"{rule.source} rules replay with {spec.needs} set"
        return None

    def _upstream(self, rule: AnyRule) -> tuple[RangeSource, float]:
        """The range source answering ``rule``, and the grid its clamped ranges round to."""
        spec = replayable(rule)
        assert spec is not None  # _why_not() keeps such rules out
        return self._upstreams[spec.upstream], spec.grid or self._grid

    async def _fetch(
        self,
        rule: Any,
        variables: Mapping[str, str],
        opened: float,
        chunk: tuple[float, float],
    ) -> list[tuple[float, AnyRule, Sample]]:
        start, end = chunk
        step = rule.effective_interval
        times = grid(start, end, step)
        try:
            query = render(rule.query, variables, promql_escape)
            found: list[RangeSeries] = []
            upstream, grid_of = self._upstream(rule)
            for scoped, first, last in self._scoped(query, opened, times, step, grid_of):
                found += await upstream.query_range(scoped, first, last, step)
            found = _own(rule, variables, found)
        except WatchdogError as exc:
            failed = Sample.failed(str(exc), transient=exc.transient)
            return [(t, rule, failed) for t in times]
        at_step: dict[int, list[Series]] = {}
        for labels, points in found:
            for ts, value in points:
                at_step.setdefault(round((ts - start) / step), []).append(Series(value, labels))
        return [(t, rule, _sample(at_step.get(i, []))) for i, t in enumerate(times)]

    def _scoped(
        self, query: str, opened: float, times: list[float], step: float, grid_of: float
    ) -> list[tuple[str, float, float]]:
        """``(clamped query, first, last)`` runs of evaluation times sharing one query."""
        coarse = max(grid_of, step, longest_range(query) / MAX_CLAMPED_QUERIES)
        runs: list[tuple[str, float, float]] = []
        for t in times:
            scoped = clamp_ranges(query, t - opened, coarse)
            if runs and runs[-1][0] == scoped:
                runs[-1] = (scoped, runs[-1][1], t)
            else:
                runs.append((scoped, t, t))
        return runs

    async def _baseline(
        self, rule: Any, variables: Mapping[str, str], start: float
    ) -> dict[str, float]:
        if rule.baseline is None:
            return {}
        at = start - rule.baseline.offset
        try:
            query = render(rule.baseline.query or rule.query, variables, promql_escape)
            upstream, _ = self._upstream(rule)
            found = await upstream.query_range(query, at, at, rule.effective_interval)
            found = _own(rule, variables, found)
        except WatchdogError:
            return {}  # evaluate() then uses the fallback, or is inconclusive
        return {series_key(labels): pts[-1][1] for labels, pts in found if pts}


def _own(
    rule: AnyRule, variables: Mapping[str, str], found: list[RangeSeries]
) -> list[RangeSeries]:
    """A ``shared_by`` rule's query answers for every service: keep this one's series."""
    shared_by = getattr(rule, "shared_by", None)
    if shared_by is None:
        return found
    service = variables.get("service", "")
    return [(labels, pts) for labels, pts in found if labels.get(shared_by) == service]


def _chunks(start: float, end: float, step: float, size: int) -> list[tuple[float, float]]:
    times = grid(start, end, step)
    return [(times[i], times[min(i + size, len(times)) - 1]) for i in range(0, len(times), size)]


def _sample(series: list[Series]) -> Sample:
    if not series:
        return Sample.no_data("empty result")
    return Sample.of(*series, detail=f"{len(series)} series")


_KINDS = {
    Verdict.PENDING: "pending",
    Verdict.FIRING: "firing",
    Verdict.OK: "resolved",
    Verdict.INCONCLUSIVE: "inconclusive",
}


def _walk(
    samples: Iterator[tuple[float, AnyRule, Sample]],
    baselines: Mapping[str, Mapping[str, float]],
    result: ReplayResult,
) -> None:
    """Evaluate in time order; every rule's final verdict once the walk ends."""
    tracker = Tracker()
    _steps(samples, baselines, result, tracker)
    result.finals = tracker.finals()


def _steps(
    samples: Iterator[tuple[float, AnyRule, Sample]],
    baselines: Mapping[str, Mapping[str, float]],
    result: ReplayResult,
    tracker: Tracker,
) -> None:
    """Evaluate in time order, recording transitions and the actions they would start."""
    states: dict[str, RuleState] = {}
    approval_asked = False
    for at, rule, sample in samples:
        previous = states.get(rule.name, RuleState())
        ev = evaluate(rule, previous, sample, at, baselines.get(rule.name))
        states[rule.name] = ev.state
        _count(result, rule.name, sample)
        if ev.verdict is previous.verdict:
            tracker.observe(rule, sample, ev, at)
            continue
        detail = describe(rule, ev)
        tracker.observe(rule, sample, ev, at, detail)
        kind = _KINDS[ev.verdict]
        result.events.append(ReplayEvent(at, rule.name, kind, detail or kind, ev.value))
        if ev.verdict is not Verdict.FIRING:
            continue
        if rule.shadow and rule.action is not Action.NOTIFY:  # live: would_roll_back
            result.events.append(_action(at, rule, "shadow: would roll back; nothing acts"))
        elif rule.action is Action.ROLLBACK:
            result.events.append(_action(at, rule, "rollback would start; rules stop"))
            result.rollback_at, result.rollback_rule = at, rule.name
            return
        if rule.action is Action.APPROVE and not approval_asked:
            approval_asked = True
            result.events.append(_action(at, rule, "rollback would wait for an approver"))
        elif rule.action is Action.NOTIFY:
            result.events.append(_action(at, rule, "people would be notified"))


def _count(result: ReplayResult, rule: str, sample: Sample) -> None:
    result.evaluations += 1
    result.per_rule[rule] = result.per_rule.get(rule, 0) + 1
    if sample.kind is not SampleKind.VALUES:
        result.without_data[rule] = result.without_data.get(rule, 0) + 1
        result.why_no_data[rule] = sample.error or sample.kind.value


def _action(at: float, rule: AnyRule, message: str) -> ReplayEvent:
    return ReplayEvent(at, rule.name, "action", message, action=rule.action.value)
