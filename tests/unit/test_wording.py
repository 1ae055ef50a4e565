"""Rule outcomes in words: a summary's ``{{ series }}`` names the worst breaching series
(the slowest statement), not whichever came first; no "2x baseline (n/as)" when there is
no baseline."""

from __future__ import annotations

from typing import Any

from tests.rules import rule_model
from watchdog.evaluation.evaluate import evaluate
from watchdog.evaluation.wording import breaching_series, describe, rule_summary
from watchdog.foundation.model import Deployment, RuleState, Sample, Series, Window, WindowPhase
from watchdog.rulefile.schema import PostgresRule, PrometheusRule


def latency_rule(threshold: str = "> 1000") -> PostgresRule:
    return PostgresRule(
        name="db-avg-query-latency",
        source="postgres",
        target="app",
        query="SELECT 1",
        threshold=threshold,
    )


def test_the_worst_breaching_statement_is_named() -> None:
    sample = Sample.of(
        Series(1500.0, {"queryid": "1", "statement": "SELECT a FROM t WHERE id = $1"}),
        Series(3200.0, {"queryid": "2", "statement": "SELECT pg_sleep($1)"}),
        Series(4.0, {"queryid": "3", "statement": "SELECT 1"}),
    )
    result = evaluate(latency_rule(), RuleState(), sample, now=0)
    assert result.value == 3200.0
    assert breaching_series(result) == 'queryid="2",statement="SELECT pg_sleep($1)"'


def test_low_is_bad_thresholds_name_the_lowest() -> None:
    sample = Sample.of(Series(0.2, {"pool": "a"}), Series(0.1, {"pool": "b"}))
    result = evaluate(latency_rule("< 0.5"), RuleState(), sample, now=0)
    assert breaching_series(result) == 'pool="b"'


def test_nothing_breaching_names_nothing() -> None:
    result = evaluate(latency_rule(), RuleState(), Sample.of(Series(3.0, {"q": "x"})), now=0)
    assert breaching_series(result) == ""


SUMMARY = "{{ service }} p95 {{ value }}s above 2s and 2x baseline ({{ baseline }}s)"


def p95(**kw: Any) -> PrometheusRule:
    threshold, baseline = "> 2 and > 2 * baseline", {"offset": "1h"}
    return rule_model(
        PrometheusRule, kw, name="api-p95-latency", source="prometheus", query="q",
        threshold=threshold, baseline=baseline, summary=SUMMARY,
    )  # fmt: skip


WINDOW = Window("w1", Deployment("api", "production", "v2"), WindowPhase.WATCHING, 0, 60, 0)


def test_with_a_baseline_the_summary_is_the_authors() -> None:
    result = evaluate(p95(), RuleState(), Sample.of(3.1), 0, {"{}": 1.2})
    assert rule_summary(p95(), WINDOW, result) == "api p95 3.1s above 2s and 2x baseline (1.2s)"
    assert describe(p95(), result) == "value 3.1, threshold > 2 and > 2 * baseline (= 2.4)"


def test_without_a_baseline_the_words_say_what_was_judged() -> None:
    result = evaluate(p95(), RuleState(), Sample.of(3.1), 0, None)
    summary = rule_summary(p95(), WINDOW, result)
    assert "n/a" not in summary and "baseline (" not in summary
    assert summary == (
        "api-p95-latency fired: value 3.1, threshold > 2 (no baseline before the deploy)"
    )


def test_a_summary_without_the_baseline_variable_is_kept() -> None:
    rule = p95(summary="{{ service }} p95 {{ value }}s over {{ threshold }}")
    result = evaluate(rule, RuleState(), Sample.of(3.1), 0, None)
    assert rule_summary(rule, WINDOW, result) == (
        "api p95 3.1s over > 2 (no baseline before the deploy)"
    )
