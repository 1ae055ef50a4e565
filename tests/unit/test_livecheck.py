"""The live check's probes and the histogram_quantile bound, against a scripted Prometheus."""

from __future__ import annotations

from typing import Any

import pytest

from watchdog.foundation.model import SampleKind
from watchdog.rulefile.livecheck import QueryRejected, SelectorWatch, check_rule
from watchdog.rulefile.schema import PrometheusRule

P95 = 'histogram_quantile(0.95, sum by (le) (rate(lat_bucket{{service="{{{{ service }}}}"}}[5m]))){tail}'


class Scripted:
    """count(...) answers from a table (absent: empty); `le` values of every histogram."""

    def __init__(self, counts: dict[str, float], les: list[str] | None = None) -> None:
        self.counts = counts
        self.les = les or ["0.1", "0.5", "1", "+Inf"]
        self.asked: list[str] = []

    def count(self, query: str) -> float | None:
        self.asked.append(query)
        return self.counts.get(query)

    def label_values(self, label: str, match: str) -> list[str]:
        assert label == "le"
        return self.les

    def format_query(self, query: str) -> str:
        if query.count("(") != query.count(")"):
            raise QueryRejected("1:9: parse error: unclosed left parenthesis")
        return query


def test_a_query_prometheus_cannot_parse_is_an_error() -> None:
    found = check_rule(rule("sum(rate(a[5m])"), Scripted({}), "service", None)
    assert [str(f) for f in found] == [
        "f.yml:3: rule 'r': Prometheus cannot parse the query: "
        "1:9: parse error: unclosed left parenthesis"
    ]


def rule(query: str, threshold: str = "> 0", **kw: Any) -> PrometheusRule:
    return PrometheusRule(
        name="r", source="prometheus", query=query, threshold=threshold, origin="f.yml:3", **kw
    )


HEALTHY = {
    "count(lat_bucket)": 9,
    'count(lat_bucket{service!=""})': 9,
    'count(lat_bucket{service="api"})': 9,
}


@pytest.mark.parametrize(
    ("threshold", "tail", "problem"),
    [
        ("> 2", "", "threshold > 2 can never be reached"),
        ("> 1", "", "threshold > 1 can never be reached"),  # at most 1: never above it
        (">= 1", "", None),  # equal to the top bucket is reachable
        ("> 0.9", "", None),
        ("> 2 and > 2 * baseline", "", "threshold > 2 can never be reached"),
        ("> 2 * baseline", "", None),  # relative only: no absolute bound to test
        ("< 0.05", "", None),
        ("> 2", " * 1000", None),  # not a bare histogram_quantile: scaled, not judged
    ],
)
def test_quantile_thresholds_above_the_largest_finite_bucket(
    threshold: str, tail: str, problem: str | None
) -> None:
    kw = {"baseline": {"offset": "1h"}} if "baseline" in threshold else {}
    found = check_rule(
        rule(P95.format(tail=tail), threshold, **kw), Scripted(HEALTHY), "service", "api"
    )
    messages = [f.message for f in found]
    if problem is None:
        assert messages == []
    else:
        assert len(messages) == 1 and messages[0].startswith(problem)
        assert 'its largest finite bucket (le="1")' in messages[0]
        assert str(found[0]).startswith("f.yml:3: rule 'r': threshold")


def test_the_first_failing_probe_of_each_selector_is_the_problem() -> None:
    prom = Scripted({"count(a)": 1})
    found = check_rule(rule('a{service="{{ service }}"} / b'), prom, "service", None)
    assert [f.message for f in found] == [
        "series a have no 'service' label, so the rule never matches "
        "(add it by relabelling, see deploy/prometheus.yml)",
        "no series named b (is the name right, is its exporter scraped?)",
    ]
    assert prom.asked == ["count(a)", 'count(a{service!=""})', "count(b)"]


def test_a_shared_by_label_must_exist_and_other_variables_are_not_guessed() -> None:
    prom = Scripted({"count(a)": 1, 'count(a{team="x"})': 1})
    r = rule('sum by (svc) (a{env="{{ environment }}", team="x"})', shared_by="svc")
    found = check_rule(r, prom, "service", "api")
    assert [f.message for f in found] == [
        "series a have no 'svc' label, so the rule never matches "
        "(add it by relabelling, see deploy/prometheus.yml)"
    ]


async def test_during_a_window_a_selector_is_checked_once_and_silence_without_answer() -> None:
    answers: dict[str, float | SampleKind | None] = {"count(a)": None}
    asked: list[str] = []

    async def count(query: str, at: float) -> float | SampleKind | None:
        asked.append(query)
        return answers.get(query)

    watch = SelectorWatch(count, "service")
    r = rule('a{service="{{ service }}"}')
    assert await watch.problem("w1", "api", r, 0.0) == (
        "no series named a (is the name right, is its exporter scraped?)"
    )
    assert await watch.problem("w1", "api", r, 1.0) is None  # said once per window
    answers["count(a)"] = SampleKind.ERROR
    assert await watch.problem("w2", "api", r, 2.0) is None  # no answer: blindness tells
    assert asked == ["count(a)", "count(a)"]


def test_the_rules_job_must_be_scraped() -> None:
    prom = Scripted({"count(a)": 1, 'count(up{job="api-pods"})': 2})
    assert check_rule(rule("a", job="{{ service }}-pods"), prom, "service", "api") == []
    found = check_rule(rule("a", job="workers"), prom, "service", None)
    assert [f.message for f in found] == ["Prometheus scrapes no job 'workers' (the rule's job:)"]
    assert check_rule(rule("a", job="{{ service }}-pods"), prom, "service", None) == []


async def test_during_a_window_a_check_without_answers_is_asked_again() -> None:
    answers: dict[str, float | SampleKind | None] = {"count(a)": SampleKind.ERROR}

    async def count(query: str, at: float) -> float | SampleKind | None:
        return answers.get(query)

    watch = SelectorWatch(count, "service")
    r = rule("a")
    assert await watch.problem("w1", "api", r, 0.0) is None  # Prometheus did not answer
    answers["count(a)"] = None
    assert await watch.problem("w1", "api", r, 1.0) == (
        "no series named a (is the name right, is its exporter scraped?)"
    )


def test_the_service_label_setting_fills_service_label_templates() -> None:
    prom = Scripted({"count(a)": 1})
    found = check_rule(rule('sum(a{ {{ service_label }}="{{ service }}"})'), prom, "app", None)
    assert [f.message for f in found] == [
        "series a have no 'app' label, so the rule never matches "
        "(add it by relabelling, see deploy/prometheus.yml)"
    ]
    assert prom.asked == ["count(a)", 'count(a{app!=""})']
