"""A rule that can never fire is an error before the deploy: checks against a live Prometheus.

Prometheus first parses the query (``format_query``: a syntax error is reported with
its position) and the rule's ``job:`` must be scraped. Then, for every vector selector,
in order, the first probe that finds nothing is the problem (each probe is one
``count(...)``, a single number):

1. a series of that name exists at all (else a wrong metric name, or an exporter not
   scraped);
2. the rule matches ``{{ service }}`` on the service label, and the series carry the
   labels the rule filters the service on, or ``shared_by`` names (else the rule can
   never match: add it by relabelling, see ``deploy/prometheus.yml``);
3. with a service named, series of that service exist.

Matchers beyond those (``status=~"5.."``) finding nothing are checked against the label
values that exist (:mod:`watchdog.rulefile.livevalues`: a missing label, or a value of another
shape, ``500`` among ``2xx, 5xx``, is an error listing them); otherwise only a note: an
error counter's series appears with its first error ("absent is zero"). Judge rules are
checked the same way, through the one query their counters are read with. A rule that is one
``histogram_quantile(...)`` with an absolute ``>``/``>=`` clause at or above the largest
finite bucket bound of its ``_bucket`` series can never fire: ``histogram_quantile``
answers at most that bound.

``watchdog check --prometheus`` runs every probe (``check_rules``); during a window,
:class:`SelectorWatch` runs probes 1-3 once for a rule whose query comes back empty and
the engine journals what it finds. The probes themselves are :mod:`watchdog.rulefile.liveprobes`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from watchdog.foundation.model import Sample, SampleKind
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.liveprobes import Probe, distinct, fill, is_templated, probes, rendered
from watchdog.rulefile.livevalues import value_problems
from watchdog.rulefile.promql import PromQLError, Selector, top_call
from watchdog.rulefile.schema import PrometheusRule
from watchdog.rulefile.template import placeholders, promql_escape, render

Checked = PrometheusRule | JudgeRule  # every kind whose query Prometheus answers


@dataclass(frozen=True)
class Finding:
    """A problem with a rule: ``file:line: rule NAME: message``."""

    origin: str
    rule: str
    message: str
    error: bool = True

    def __str__(self) -> str:
        level = "" if self.error else "note: "
        return f"{self.origin}: {level}rule {self.rule!r}: {self.message}"


class Prometheus(Protocol):
    """What the live check needs from a Prometheus (raises on transport failures)."""

    def count(self, query: str) -> float | None:
        """The value of ``query`` (a ``count(...)``), None when the result is empty."""
        ...

    def label_values(self, label: str, match: str) -> list[str]:
        """Values of ``label`` on series matching the selector ``match``."""
        ...

    def format_query(self, query: str) -> str:
        """Prometheus' own parse of ``query``, printed canonically; QueryRejected if bad."""
        ...


class QueryRejected(ValueError):
    """Prometheus cannot parse a query (its message says where)."""


def check_rule(rule: Checked, prom: Prometheus, label: str, service: str | None) -> list[Finding]:
    """Every finding for one rule (errors first found per selector, then the quantile)."""

    def finding(message: str, error: bool = True) -> Finding:
        return Finding(rule.origin, rule.name, message, error)

    try:
        # Prometheus parses the query; its canonical print is what the tokenizer reads.
        query = prom.format_query(rendered(rule, label))
        sels = distinct(query)
    except QueryRejected as exc:
        return [finding(f"Prometheus cannot parse the query: {exc}")]
    except (PromQLError, ValueError) as exc:
        return [finding(f"cannot read the query: {exc}")]
    out: list[Finding] = [finding(m) for m in job_problems(rule, prom, service)]
    for sel in sels:
        for message, error in _selector_problems(sel, rule, prom, label, service):
            if message not in {f.message for f in out}:  # two selectors, one cause
                out.append(finding(message, error))
    if not any(f.error for f in out):
        out += [finding(m) for m in quantile_problems(rule, query, sels, prom)]
    return out


def _selector_problems(
    sel: Selector, rule: Checked, prom: Prometheus, label: str, service: str | None
) -> list[tuple[str, bool]]:
    """The first probe of ``sel`` that finds nothing, as ``(message, is_error)``."""
    for probe in probes(sel, label, service, shared_by=getattr(rule, "shared_by", None)):
        if probe.query is None or prom.count(probe.query) is None:
            found = [(probe.problem, probe.error)]
            if not probe.error:  # the matchers beyond the service's: which values?
                found = _values(sel, service, prom) or found
            return found
    return []


def _values(sel: Selector, service: str | None, prom: Prometheus) -> list[tuple[str, bool]]:
    """The label values no series has, with those that exist
    (:mod:`watchdog.rulefile.livevalues`)."""
    if sel.metric is None:
        return []
    templated = tuple(m for m in sel.matchers if is_templated(m))
    scope = fill(templated, service) if service is not None else ()
    rest = [m for m in sel.matchers if not is_templated(m)]
    return value_problems(sel.metric, scope, rest, prom)


def job_problems(rule: Checked, prom: Prometheus, service: str | None) -> list[str]:
    """The rule's ``job:`` must be a job Prometheus scrapes."""
    wanted = getattr(rule, "job", None)
    if wanted is None or (placeholders(wanted) and service is None):
        return []
    job = render(wanted, dict.fromkeys(placeholders(wanted), service or ""), promql_escape)
    if prom.count(f'count(up{{job="{job}"}})') is not None:
        return []
    return [f"Prometheus scrapes no job {job!r} (the rule's job:)"]


def quantile_problems(
    rule: Checked, query: str, sels: list[Selector], prom: Prometheus
) -> list[str]:
    """A ``histogram_quantile`` threshold above the histogram's largest finite bucket."""
    if not top_call(query, "histogram_quantile"):
        return []
    out = []
    for sel in sels:
        if sel.metric is None or not sel.metric.endswith("_bucket"):
            continue
        bounds = [float(v) for v in prom.label_values("le", sel.metric) if _finite(v)]
        if not bounds:
            continue
        top = max(bounds)
        for clause in rule.threshold.absolute:
            bound = clause.bound(None)
            assert bound is not None  # absolute clauses always have one
            if (clause.op == ">" and bound >= top) or (clause.op == ">=" and bound > top):
                out.append(
                    f"threshold {clause.describe()} can never be reached: histogram_quantile "
                    f"over {sel.metric} is at most {top:g}, its largest finite bucket "
                    f'(le="{top:g}"); use a histogram with buckets above {bound:g}'
                )
    return out


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def check_rules(
    rules: Iterable[Checked], prom: Prometheus, label: str, service: str | None
) -> list[Finding]:
    """Findings for every rule, in file order."""
    return [f for rule in rules for f in check_rule(rule, prom, label, service)]


Count = Callable[[str, float], Awaitable[float | SampleKind | None]]


def counting(instant: Callable[[str, float], Awaitable[Sample]]) -> Count:
    """A :data:`Count` over a source's instant query."""

    async def count(query: str, at: float) -> float | SampleKind | None:
        sample = await instant(query, at)
        if sample.kind is SampleKind.ERROR:
            return SampleKind.ERROR
        return sample.series[0].value if sample.series else None

    return count


class SelectorWatch:
    """During a window: says once per (window, rule) when a selector matches nothing."""

    def __init__(self, count: Count, label: str) -> None:
        self._count = count  # query, at -> the number, None (empty), or ERROR (no answer)
        self._label = label
        self._checked: set[tuple[str, str]] = set()

    async def problem(
        self, window_id: str, service: str, rule: PrometheusRule, at: float
    ) -> str | None:
        """The first selector problem of ``rule`` for ``service``; None when none or asked.

        Asked until Prometheus answers every probe, then never again for the window.
        """
        key = (window_id, rule.name)
        if key in self._checked:
            return None
        try:
            sels = distinct(rendered(rule, self._label))
        except (PromQLError, ValueError):
            sels = []  # the query's own error is judged by evaluate()
        for sel in sels:
            for probe in probes(sel, self._label, service, shared_by=rule.shared_by):
                answer = await self._answer(probe, at)
                if answer is SampleKind.ERROR:
                    return None  # no answer: blindness says so; asked again next time
                if answer is None:
                    self._checked.add(key)
                    return probe.problem
        self._checked.add(key)
        return None

    async def _answer(self, probe: Probe, at: float) -> float | SampleKind | None:
        if not probe.error:
            return 1.0  # a note's probe: not worth a query during a window
        if probe.query is None:
            return None
        return await self._count(probe.query, at)

    def forget(self, window_id: str) -> None:
        """Drop what was asked about a window that closed."""
        self._checked = {k for k in self._checked if k[0] != window_id}
