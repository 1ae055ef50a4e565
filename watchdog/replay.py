"""Backtesting: evaluate rule files over a past time range as if the window were live.

Each Prometheus rule's query is run as a range query (prometheus-api-client's
``custom_query_range``) stepped at the rule's interval from the range's start, which
gives the same value an instant query would have returned at each evaluation. Those
samples go through the pure :func:`watchdog.evaluate.evaluate` in time order with the
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
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from watchdog.errors import WatchdogError
from watchdog.evaluate import evaluate
from watchdog.model import (
    Action,
    Deployment,
    RuleState,
    Sample,
    SampleKind,
    Series,
    Verdict,
    iso,
    series_key,
)
from watchdog.replayfinal import Final, Tracker
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import AnyRule, RuleSet
from watchdog.rulefile.schema import PrometheusRule
from watchdog.rulefile.telemetry import LokiRule
from watchdog.rulefile.template import promql_escape, render
from watchdog.sources.prometheus import RangeSeries
from watchdog.sources.window_range import clamp_ranges, longest_range
from watchdog.wording import describe

REPLAYABLE = (PrometheusRule, JudgeRule, LokiRule)  # kinds whose history is kept (Prometheus, Loki)
Queried = PrometheusRule | JudgeRule | LokiRule
LOKI_GRID = 1.0  # log lines are continuous: Loki ranges clamp to whole seconds
CHUNK_STEPS = 1000  # evaluations fetched per range query (Prometheus caps at 11000)
MAX_EVALUATIONS = 2_000_000
MAX_CLAMPED_QUERIES = 60  # per rule, for the window's first `range` seconds

Progress = Callable[[int, int], None]


class RangeSource(Protocol):
    """What replay needs of Prometheus: range queries."""

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` at ``start, start + step, …, end``."""
        ...


@dataclass(frozen=True)
class ReplayEvent:
    """One line of the replay's timeline."""

    at: float
    rule: str
    kind: str  # pending | firing | resolved | inconclusive | action
    message: str
    value: float | None = None
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (time as ISO 8601)."""
        out = asdict(self)
        out["at"] = iso(self.at)
        return out


@dataclass
class ReplayResult:
    """What the rules would have done over the range."""

    start: float
    end: float
    events: list[ReplayEvent] = field(default_factory=list)
    rollback_at: float | None = None
    rollback_rule: str | None = None
    evaluations: int = 0
    replayed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule -> why
    # Evaluations per rule, and those without data (empty answers and failed queries):
    # a replay that saw nothing is not a pass.
    per_rule: dict[str, int] = field(default_factory=dict)
    without_data: dict[str, int] = field(default_factory=dict)
    why_no_data: dict[str, str] = field(default_factory=dict)  # rule -> the last reason
    finals: dict[str, Final] = field(default_factory=dict)  # rule -> its final verdict

    @property
    def unjudged(self) -> list[str]:
        """Rules that could not judge most of the range (no data, or no verdict)."""
        return [name for name, final in self.finals.items() if not final.judged]

    @property
    def saw_no_data(self) -> list[str]:
        """Rules evaluated only without data (unknown service, empty range, no Prometheus)."""
        return [r for r, n in self.per_rule.items() if n and self.without_data.get(r) == n]

    def first(self, rule: str, kind: str) -> ReplayEvent | None:
        """The first event of ``kind`` for ``rule``."""
        return next((e for e in self.events if e.rule == rule and e.kind == kind), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "rollback_at": iso(self.rollback_at),
            "rollback_rule": self.rollback_rule,
            "evaluations": self.evaluations,
            "evaluations_without_data": sum(self.without_data.values()),
            "without_data": dict(self.without_data),
            "saw_no_data": {r: self.why_no_data.get(r, "") for r in self.saw_no_data},
            "replayed": self.replayed,
            "rules": {name: final.as_dict() for name, final in self.finals.items()},
            "unjudged": self.unjudged,
            "skipped": self.skipped,
            "events": [e.as_dict() for e in self.events],
        }


def grid(start: float, end: float, step: float) -> list[float]:
    """Evaluation times: ``start``, ``start + step``, … up to ``end``."""
    n = int((end - start) // step) + 1
    return [start + i * step for i in range(max(0, n))]


def count_evaluations(rules: RuleSet, start: float, end: float) -> int:
    """How many evaluations a replay of the range would make (to refuse absurd ranges)."""
    span = max(0.0, end - start)
    return sum(
        int(span // r.effective_interval) + 1 for r in rules.rules if isinstance(r, REPLAYABLE)
    )


class Replayer:
    """Fetches each rule's history and walks it through evaluate()."""

    def __init__(
        self,
        source: RangeSource,
        *,
        loki: RangeSource | None = None,
        chunk_steps: int = CHUNK_STEPS,
        grid: float = 15.0,
        variables: Mapping[str, str] | None = None,
    ) -> None:
        self._source = source
        self._loki = loki
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
        replayable = [r for r in rules.rules if isinstance(r, REPLAYABLE) and self._has(r)]
        for rule in rules.rules:
            if not isinstance(rule, REPLAYABLE):
                result.skipped[rule.name] = f"{rule.source} rules have no history to replay"
            elif not self._has(rule):
                result.skipped[rule.name] = "loki rules replay with WATCHDOG_LOKI_URL set"
        chunks = {
            r.name: _chunks(start, end, r.effective_interval, self._chunk) for r in replayable
        }
        total, done = sum(len(c) for c in chunks.values()), 0
        timelines: list[Iterator[tuple[float, AnyRule, Sample]]] = []
        baselines: dict[str, dict[str, float]] = {}
        for rule in replayable:
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

    def _has(self, rule: Queried) -> bool:
        return not isinstance(rule, LokiRule) or self._loki is not None

    def _upstream(self, rule: Queried) -> RangeSource:
        if isinstance(rule, LokiRule):
            assert self._loki is not None  # _has() keeps such rules out otherwise
            return self._loki
        return self._source

    async def _fetch(
        self,
        rule: Queried,
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
            grid_of = LOKI_GRID if isinstance(rule, LokiRule) else self._grid
            for scoped, first, last in self._scoped(query, opened, times, step, grid_of):
                found += await self._upstream(rule).query_range(scoped, first, last, step)
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
        self, rule: Queried, variables: Mapping[str, str], start: float
    ) -> dict[str, float]:
        if rule.baseline is None:
            return {}
        at = start - rule.baseline.offset
        try:
            query = render(rule.baseline.query or rule.query, variables, promql_escape)
            found = await self._upstream(rule).query_range(query, at, at, rule.effective_interval)
            found = _own(rule, variables, found)
        except WatchdogError:
            return {}  # evaluate() then uses the fallback, or is inconclusive
        return {series_key(labels): pts[-1][1] for labels, pts in found if pts}


def _own(
    rule: Queried, variables: Mapping[str, str], found: list[RangeSeries]
) -> list[RangeSeries]:
    """A ``shared_by`` rule's query answers for every service: keep this one's series."""
    if isinstance(rule, LokiRule) or rule.shared_by is None:
        return found
    service = variables.get("service", "")
    return [(labels, pts) for labels, pts in found if labels.get(rule.shared_by) == service]


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
