"""A summary's ``{{ series }}`` names the worst breaching series (the slowest statement),
not whichever came first."""

from __future__ import annotations

from watchdog.evaluate import evaluate
from watchdog.model import RuleState, Sample, Series
from watchdog.rulefile.schema import PostgresRule
from watchdog.wording import breaching_series


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
