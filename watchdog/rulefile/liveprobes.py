"""The probes of a rule's selectors against a live Prometheus: ``count(...)`` queries, in
order, the first that finds nothing naming the problem (:mod:`watchdog.rulefile.livecheck` for the
checks that run them: ``watchdog check --prometheus`` and, during a window, the
``SelectorWatch``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.promql import Matcher, Selector, selectors
from watchdog.rulefile.schema import PrometheusRule
from watchdog.rulefile.template import placeholders, promql_escape, render

# What templated values stand for while the query is analysed (both pass check_value).
SERVICE = "wd-service-value"  # {{ service }}
UNKNOWN = "wd-unknown-value"  # every other variable


@dataclass(frozen=True)
class Probe:
    """A ``count(...)`` query and what it means when it finds nothing."""

    query: str | None  # None: a problem found without asking (the rule contradicts settings)
    problem: str
    error: bool = True  # False: a note, never an exit 1


def rendered(rule: PrometheusRule | JudgeRule, label: str) -> str:
    """The query with stand-ins for its variables (``service_label``: the label itself)."""
    names = dict.fromkeys(placeholders(rule.query), UNKNOWN)
    names |= {"service": SERVICE, "service_label": label}
    return render(rule.query, names, promql_escape)


def distinct(query: str) -> list[Selector]:
    """The query's selectors, each once."""
    return list({s.render(): s for s in selectors(query)}.values())


def is_templated(m: Matcher) -> bool:
    """Whether a matcher's value comes from a template variable."""
    return UNKNOWN in m.value or SERVICE in m.value


def fill(matchers: Iterable[Matcher], service: str) -> tuple[Matcher, ...]:
    """The matchers on the service with its name filled in; other templated ones dropped."""
    return tuple(
        Matcher(m.name, m.op, m.value.replace(SERVICE, service))
        for m in matchers
        if UNKNOWN not in m.value
    )


def probes(
    sel: Selector, label: str, service: str | None, *, shared_by: str | None = None
) -> list[Probe]:
    """The probes of one selector, in order: the first that finds nothing is the problem."""
    if sel.metric is None:
        return []
    name = sel.metric
    out = [
        Probe(
            f"count({name})",
            f"no series named {name} (is the name right, is its exporter scraped?)",
        )
    ]
    on_service = {m.name for m in sel.matchers if SERVICE in m.value}
    if on_service and label not in on_service:
        out.append(
            Probe(
                None,
                f"{name} is matched on {{{{ service }}}} by the label "
                f"{', '.join(sorted(on_service))}, but the service label is {label!r}",
            )
        )
    for wanted in sorted(on_service | ({shared_by} if shared_by else set())):
        out.append(
            Probe(
                f'count({name}{{{wanted}!=""}})',
                f"series {name} have no {wanted!r} label, so the rule never matches "
                "(add it by relabelling, see deploy/prometheus.yml)",
            )
        )
    templated = tuple(m for m in sel.matchers if is_templated(m))
    mine = Selector(name, fill(templated, service)) if service is not None else None
    if mine is not None and mine.matchers:
        out.append(Probe(f"count({mine.render()})", f"no series {mine.render()}"))
    rest = tuple(m for m in sel.matchers if not is_templated(m))
    if rest:
        full = Selector(name, (mine.matchers if mine else ()) + rest)
        out.append(
            Probe(
                f"count({full.render()})",
                f"no series match {full.render()} right now (fine for an error counter "
                "whose series appears with its first error)",
                error=False,
            )
        )
    return out
