"""Table tests for the one pure evaluate() function."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from tests.rules import rule_model
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, Sample, Series, Verdict
from watchdog.rulefile.schema import PrometheusRule

NAN, INF = math.nan, math.inf


def rule(**kw: Any) -> PrometheusRule:
    base = {"name": "r", "source": "prometheus", "query": "q", "threshold": "> 0.05"}
    return rule_model(PrometheusRule, kw, **base)


def s(*values: float, **labels: str) -> Sample:
    return Sample.of(*(Series(v, labels) for v in values))


def series(*pairs: tuple[str, float]) -> Sample:
    return Sample.of(*(Series(v, {"instance": name}) for name, v in pairs))


# (id, rule kwargs, sample, expected verdict)
SINGLE = [
    ("below threshold", {}, s(0.01), Verdict.OK),
    ("above threshold, for 0", {}, s(0.2), Verdict.FIRING),
    ("equal is not above", {}, s(0.05), Verdict.OK),
    ("above with for: pending", {"for": "5m"}, s(0.2), Verdict.PENDING),
    ("NaN is no data → inconclusive by default", {}, s(NAN), Verdict.INCONCLUSIVE),
    ("NaN with no_data ok", {"no_data": "ok"}, s(NAN), Verdict.OK),
    ("NaN with no_data breach", {"no_data": "breach"}, s(NAN), Verdict.FIRING),
    ("+Inf is a real breach (histogram_quantile beyond last bucket)", {}, s(INF), Verdict.FIRING),
    ("-Inf under a > threshold is ok", {}, s(-INF), Verdict.OK),
    ("-Inf under a < threshold breaches", {"threshold": "< 1"}, s(-INF), Verdict.FIRING),
    ("empty vector → inconclusive by default", {}, Sample.of(), Verdict.INCONCLUSIVE),
    ("empty vector, no_data ok", {"no_data": "ok"}, Sample.of(), Verdict.OK),
    ("empty vector, no_data breach", {"no_data": "breach"}, Sample.of(), Verdict.FIRING),
    (
        "prometheus status:error → inconclusive",
        {},
        Sample.failed("bad_data: parse error", transient=False),
        Verdict.INCONCLUSIVE,
    ),
    ("non-JSON body → inconclusive", {}, Sample.failed("malformed response"), Verdict.INCONCLUSIVE),
    ("timeout → inconclusive", {}, Sample.failed("timeout after 5s"), Verdict.INCONCLUSIVE),
    (
        "matrix result → inconclusive",
        {},
        Sample.failed("query returned a range vector", transient=False),
        Verdict.INCONCLUSIVE,
    ),
    (
        "error with on_error breach",
        {"on_error": "breach"},
        Sample.failed("refused"),
        Verdict.FIRING,
    ),
    ("error with on_error ok", {"on_error": "ok"}, Sample.failed("refused"), Verdict.OK),
    (
        "error never reads as no_data",
        {"no_data": "breach"},
        Sample.failed("x"),
        Verdict.INCONCLUSIVE,
    ),
    ("one of several series breaches", {}, series(("a", 0.0), ("b", 0.3)), Verdict.FIRING),
    ("all series healthy", {}, series(("a", 0.0), ("b", 0.01)), Verdict.OK),
    ("a NaN series beside a healthy one", {}, series(("a", 0.0), ("b", NAN)), Verdict.INCONCLUSIVE),
    ("a NaN series beside a breaching one", {}, series(("a", 0.9), ("b", NAN)), Verdict.FIRING),
    ("percent threshold", {"threshold": "> 5%"}, s(0.06), Verdict.FIRING),
    ("and: both must hold", {"threshold": "> 2 and < 10"}, s(11), Verdict.OK),
]


@pytest.mark.parametrize(
    ("kw", "sample", "expected"),
    [pytest.param(kw, smp, exp, id=name) for name, kw, smp, exp in SINGLE],
)
def test_single_evaluation(kw: dict[str, Any], sample: Sample, expected: Verdict) -> None:
    result = evaluate(rule(**kw), RuleState(), sample, now=1000.0)
    assert result.verdict is expected
    assert result.state.verdict is expected


def test_for_needs_the_condition_at_every_evaluation() -> None:
    r = rule(**{"for": "60s"})
    state = RuleState()
    verdicts = []
    for t, v in [(0, 0.2), (30, 0.2), (59, 0.2), (60, 0.2), (75, 0.01), (90, 0.2), (150, 0.2)]:
        result = evaluate(r, state, s(v), now=1000.0 + t)
        state = result.state
        verdicts.append(result.verdict)
    assert verdicts == [
        Verdict.PENDING,
        Verdict.PENDING,
        Verdict.PENDING,
        Verdict.FIRING,
        Verdict.OK,  # the condition broke: pending starts over
        Verdict.PENDING,
        Verdict.FIRING,
    ]


def test_missing_data_resets_pending_instead_of_carrying_a_breach() -> None:
    r = rule(**{"for": "60s"})
    state = evaluate(r, RuleState(), s(0.2), now=0).state
    gap = evaluate(r, state, Sample.failed("prometheus down"), now=30)
    assert gap.verdict is Verdict.INCONCLUSIVE
    assert gap.state.pending_since == {}
    after = evaluate(r, gap.state, s(0.2), now=61)
    assert after.verdict is Verdict.PENDING  # not FIRING: the gap did not count as a breach


def test_each_series_has_its_own_for() -> None:
    r = rule(**{"for": "60s"})
    st = evaluate(r, RuleState(), series(("a", 0.2), ("b", 0.0)), now=0).state
    st = evaluate(r, st, series(("a", 0.2), ("b", 0.2)), now=30).state
    result = evaluate(r, st, series(("a", 0.2), ("b", 0.2)), now=60)
    assert result.verdict is Verdict.FIRING
    assert result.state.pending_since == {'{instance="a"}': 0, '{instance="b"}': 30}
    # a disappears (its pending is dropped), b is not old enough to fire on its own
    result = evaluate(r, result.state, series(("b", 0.2)), now=70)
    assert result.verdict is Verdict.PENDING


def test_errors_with_on_error_breach_fire_after_for() -> None:
    r = rule(on_error="breach", **{"for": "3m"})
    state = RuleState()
    for t in (0, 60, 120):
        result = evaluate(r, state, Sample.failed("connection refused"), now=t)
        state = result.state
        assert result.verdict is Verdict.PENDING
    assert (
        evaluate(r, state, Sample.failed("connection refused"), now=180).verdict is Verdict.FIRING
    )
    assert state.failures == 3


@pytest.mark.parametrize(
    ("threshold", "baselines", "value", "expected"),
    [
        ("> 2 * baseline", {"{}": 0.5}, 1.1, Verdict.FIRING),
        ("> 2 * baseline", {"{}": 0.5}, 0.9, Verdict.OK),
        ("> 2 * baseline", None, 100.0, Verdict.INCONCLUSIVE),  # missing baseline never fires
        ("> 2 * baseline", {"{}": NAN}, 100.0, Verdict.INCONCLUSIVE),
        ("> 2 and > 2 * baseline", {"{}": 0.5}, 1.5, Verdict.OK),  # below the absolute floor
        ("> 2 and > 2 * baseline", {"{}": 1.5}, 2.5, Verdict.OK),  # below 2x baseline
        ("> 2 and > 2 * baseline", {"{}": 0.5}, 2.5, Verdict.FIRING),
        ("> baseline + 0.1", {"{}": 0.2}, 0.35, Verdict.FIRING),
        # no baseline captured: the absolute clauses alone decide (the fallback)
        ("> 2 and > 2 * baseline", None, 2.5, Verdict.FIRING),
        ("> 2 and > 2 * baseline", None, 1.5, Verdict.OK),
        ("> 2 and > 2 * baseline", {"{}": NAN}, 2.5, Verdict.FIRING),
    ],
)
def test_baseline_thresholds(
    threshold: str, baselines: dict[str, float] | None, value: float, expected: Verdict
) -> None:
    r = rule(threshold=threshold, baseline={"offset": "1h"})
    assert evaluate(r, RuleState(), s(value), now=0, baselines=baselines).verdict is expected


def test_baseline_fallback_is_used_when_capture_failed() -> None:
    r = rule(threshold="> 2 * baseline", baseline={"offset": "1h", "fallback": 1.0})
    assert evaluate(r, RuleState(), s(2.5), now=0, baselines=None).verdict is Verdict.FIRING


def test_per_series_baselines() -> None:
    r = rule(threshold="> 2 * baseline", baseline={"offset": "1h"})
    base = {'{instance="a"}': 1.0, '{instance="b"}': 10.0}
    result = evaluate(r, RuleState(), series(("a", 3.0), ("b", 3.0)), now=0, baselines=base)
    assert result.verdict is Verdict.FIRING
    assert [o.status.value for o in result.observations] == ["breach", "ok"]


def test_state_tracks_worst_value_fired_at_and_blindness() -> None:
    r = rule()
    st = evaluate(r, RuleState(), s(0.01), now=0).state
    st = evaluate(r, st, s(0.3), now=10).state
    assert st.fired_at == 10
    st = evaluate(r, st, s(0.4), now=20).state
    assert st.fired_at == 10  # still the same firing
    st = evaluate(r, st, Sample.failed("x"), now=30).state
    st = evaluate(r, st, Sample.failed("x"), now=40).state
    assert st.failures == 2 and st.fired_at is None
    # An empty answer is an answer, and a rejected query is the rule's fault, not the
    # source's: neither counts towards "watchdog blind".
    assert evaluate(r, st, Sample.of(), now=45).state.failures == 0
    assert evaluate(r, st, Sample.failed("bad_data", transient=False), now=45).state.failures == 0
    assert st.worst_value == 0.4
    st = evaluate(r, st, s(0.0), now=50).state
    assert st.failures == 0


def test_state_round_trips_through_json_with_non_finite_values() -> None:
    st = evaluate(rule(), RuleState(), s(INF), now=5).state
    back = RuleState.from_json(st.to_json())
    assert back == st
    odd = replace(st, reason='5xx \u00e9 "quoted" \\ \u2028', pending_since={'{a="\u00e9"}': 1.5})
    assert RuleState.from_json(odd.to_json()) == odd  # orjson writes UTF-8, json reads it


def test_missing_baseline_says_it_judged_on_the_absolute_threshold() -> None:
    r = rule(threshold="> 2 and > 2 * baseline", baseline={"offset": "1h"})
    result = evaluate(r, RuleState(), s(2.5), now=0, baselines=None)
    assert result.verdict is Verdict.FIRING
    assert result.reason == "baseline unavailable: judged on the absolute threshold > 2"


def test_for_allows_the_same_slack_as_due_times() -> None:
    # Polled every 15s on a grid whose ticks jitter: pending since 1000.013, judged at
    # 1030.0 (29.987s later) meets `for: 30s` instead of waiting one more interval.
    r = rule(interval="15s", **{"for": "30s"})
    state = evaluate(r, RuleState(), s(0.2), now=1000.013).state
    state = evaluate(r, state, s(0.2), now=1015.0).state
    assert evaluate(r, state, s(0.2), now=1030.0).verdict is Verdict.FIRING
    # ...but a whole evaluation early is still pending.
    assert evaluate(r, state, s(0.2), now=1029.7).verdict is Verdict.PENDING


def test_for_slack_never_lets_a_fast_rule_fire_an_evaluation_early() -> None:
    r = rule(interval="100ms", **{"for": "300ms"})
    state = RuleState()
    verdicts = []
    for t in (0.0, 0.1, 0.2, 0.3):
        result = evaluate(r, state, s(0.2), now=t)
        state = result.state
        verdicts.append(result.verdict)
    assert verdicts == [Verdict.PENDING] * 3 + [Verdict.FIRING]
