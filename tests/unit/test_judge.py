"""The judge: its statistics (table-tested, and checked for validity by simulation) and
its pure verdict over counter readings."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from tests.rules import rule_model
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, Sample, Series, Verdict
from watchdog.judge import stats
from watchdog.rulefile.judge import ROLE, JudgeRule
from watchdog.rulefile.load import check_report, load_rules

ALPHA = 0.001


# --- the statistics ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("errors", "total", "p0", "fires"),
    [
        (0, 0, 0.02, False),  # nothing seen: no evidence
        (1, 20, 0.01, False),  # one 5xx in 20 requests is 5 %, and proves nothing
        (5, 100, 0.02, False),
        (30, 1000, 0.02, False),  # 3 % against 2 %: not yet
        (100, 1000, 0.02, True),  # 10 % against 2 %: overwhelming
        (20, 1000, 0.02, False),  # exactly at the limit
        (600, 20000, 0.02, True),  # 3 % against 2 % on plenty of traffic
        (3, 10, 0.1, False),
        (10, 10, 0.1, True),  # all ten failed against a 10 % limit: 1e-10 under the null
    ],
)
def test_the_test_fires_only_on_evidence(errors: int, total: int, p0: float, fires: bool) -> None:
    assert (stats.log_evidence(errors, total, p0) >= math.log(1 / ALPHA)) is fires


def test_evidence_grows_with_the_excess_and_shrinks_below_the_limit() -> None:
    at = [stats.log_evidence(k, 1000, 0.02) for k in (10, 20, 30, 50, 80)]
    assert at == sorted(at)
    assert stats.log_evidence(0, 10_000, 0.02) == -math.inf or stats.confidence(
        stats.log_evidence(0, 10_000, 0.02)
    ) == pytest.approx(0.0)


def test_p0_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="p0"):
        stats.log_evidence(1, 10, 0.0)


@pytest.mark.parametrize(("p", "fire_rate_at_most"), [(0.02, 0.05), (0.01, 0.05)])
def test_false_alarms_stay_under_alpha_however_often_it_looks(
    p: float, fire_rate_at_most: float
) -> None:
    """Under the null (p <= p0), looking after every batch never pushes alarms above alpha."""
    rng = random.Random(15)
    runs, fired = 400, 0
    for _ in range(runs):
        k = n = 0
        for _ in range(100):  # 100 looks, 20 requests each
            k += sum(rng.random() < p for _ in range(20))
            n += 20
            if stats.log_evidence(k, n, 0.02) >= math.log(1 / 0.05):
                fired += 1
                break
    assert fired / runs <= fire_rate_at_most


def test_a_tripled_error_rate_is_found() -> None:
    rng = random.Random(16)
    runs, fired = 100, 0
    for _ in range(runs):
        k = n = 0
        for _ in range(100):
            k += sum(rng.random() < 0.06 for _ in range(50))
            n += 50
            if stats.log_evidence(k, n, 0.02) >= math.log(1 / ALPHA):
                fired += 1
                break
    assert fired >= 99


@pytest.mark.parametrize("n", [10, 100, 3600])
def test_clopper_pearson_with_no_errors_is_the_closed_form(n: int) -> None:
    assert stats.upper_bound_once(0, n, 0.01) == pytest.approx(1 - 0.01 ** (1 / n), rel=1e-6)


@pytest.mark.parametrize(("k", "n"), [(0, 100), (1, 3600), (36, 3600), (10, 1000)])
def test_the_always_valid_bound_is_wider_than_the_one_look_bound(k: int, n: int) -> None:
    once = stats.upper_bound_once(k, n, 0.0005)
    always = stats.upper_bound_always(k, n, 0.0005)
    assert k / n < once < always < 1


def test_no_traffic_bounds_nothing() -> None:
    assert stats.upper_bound_once(0, 0, 0.01) == 1.0
    assert stats.upper_bound_always(0, 0, 0.01) == 1.0


def test_requests_needed_fall_as_the_limit_rises() -> None:
    needed = [stats.requests_to_tell(p0, 1e-4) for p0 in (0.001, 0.01, 0.05, 0.2)]
    assert needed == sorted(needed, reverse=True)
    assert 1000 < needed[1] < 10_000


# --- the rule and its verdict ---------------------------------------------------------
def judge_rule(**kw: Any) -> JudgeRule:
    errors, total = 'http_requests_total{status="5xx"}', "http_requests_total"
    return rule_model(
        JudgeRule, kw, name="j", source="judge", errors=errors, total=total, warmup=0, tests=1
    )


def reading(errors: float, total: float, **labels: str) -> Sample:
    return Sample.of(
        Series(errors, {ROLE: "errors", **labels}), Series(total, {ROLE: "total", **labels})
    )


def steady(
    err: float, total: float, steps: int = 8, *, start: tuple[float, float] = (0, 0)
) -> list[Sample]:
    """Cumulative readings growing by ``err`` of ``total`` per step (the first is the start)."""
    e0, n0 = start
    return [reading(e0 + err * i, n0 + total * i) for i in range(steps + 1)]


BASE = {f'{{{ROLE}="errors"}}': 36.0, f'{{{ROLE}="total"}}': 36000.0}  # 0.1 % over 1h


def walk(rule: JudgeRule, samples: list[Sample], baselines: Any = BASE) -> list[Any]:
    state, out = RuleState(), []
    for i, sample in enumerate(samples):
        ev = evaluate(rule, state, sample, 1000.0 + 15 * i, baselines)
        state = ev.state
        out.append(ev)
    return out


def test_low_traffic_is_inconclusive_and_says_how_much_is_needed() -> None:
    evs = walk(judge_rule(), [reading(0, 0), reading(1, 20), reading(1, 40)])
    last = evs[-1]
    assert last.verdict is Verdict.INCONCLUSIVE
    assert "1 of 40 requests" in last.reason and "needs ~" in last.reason
    assert last.state.judge.evidence["needed"] > 40


def test_plenty_of_healthy_traffic_is_ok() -> None:
    evs = walk(judge_rule(), steady(2, 2_000))
    assert evs[-1].verdict is Verdict.OK
    assert evs[-1].value == pytest.approx(0.001)


def test_a_regression_fires_with_the_evidence() -> None:
    evs = walk(judge_rule(), steady(10, 500))
    assert evs[-1].verdict is Verdict.FIRING
    assert all(e.verdict is not Verdict.FIRING for e in evs[:6])  # the dispersion comes first
    ev = evs[-1].state.judge.evidence
    assert ev["errors"] == 80 and ev["requests"] == 4000 and ev["confidence"] > 1 - ALPHA
    assert "limit" in evs[-1].reason and "baseline 0.1%" in evs[-1].reason


def test_a_counter_reset_at_the_deploy_counts_from_zero() -> None:
    # The old process read 500/90,000; the new one restarts its counters.
    evs = walk(judge_rule(), [reading(500, 90_000), reading(2, 1_000), reading(4, 2_000)])
    ev = evs[-1].state.judge.evidence
    assert (ev["errors"], ev["requests"]) == (4, 2000)


def test_a_scrape_gap_does_not_count_history_twice() -> None:
    evs = walk(
        judge_rule(),
        [reading(0, 0), reading(1, 1000), Sample.no_data("empty result"), reading(2, 2000)],
    )
    ev = evs[-1].state.judge.evidence
    assert (ev["errors"], ev["requests"]) == (2, 2000)


def test_a_series_born_in_the_window_counts_whole() -> None:
    first = Sample.of(Series(1000, {ROLE: "total", "handler": "/a"}))
    later = Sample.of(
        Series(2000, {ROLE: "total", "handler": "/a"}),
        Series(7, {ROLE: "errors", "handler": "/a"}),  # the first 5xx creates the series
    )
    ev = walk(judge_rule(), [first, later])[-1].state.judge.evidence
    assert (ev["errors"], ev["requests"]) == (7, 1000)


def test_a_failed_poll_keeps_the_counts_and_is_blind() -> None:
    evs = walk(judge_rule(), [reading(0, 0), reading(1, 1000), Sample.failed("timeout")])
    assert evs[-1].verdict is Verdict.INCONCLUSIVE and evs[-1].state.failures == 1
    assert evs[-1].state.judge.evidence["requests"] == 1000


def test_warmup_ignores_the_cold_start() -> None:
    rule = judge_rule(warmup="30s")
    # A cold-start blip (10 % for the first 30 s), then healthy traffic.
    samples = [reading(0, 0), reading(100, 1000), reading(200, 2000), reading(201, 3000)]
    evs = walk(rule, samples)
    assert all(e.verdict is not Verdict.FIRING for e in evs)
    assert evs[-1].state.judge.evidence["requests"] == 1000


def test_a_late_fault_is_weighed_by_a_later_test() -> None:
    rule = judge_rule(tests=4, restart_every="45s")
    # 20 steps of 10,000 requests at 0.1 %, then 1.5 % (the limit is 0.67 %).
    samples = [reading(10 * i, 10_000 * i) for i in range(21)]
    samples += [reading(200 + 150 * i, 200_000 + 10_000 * i) for i in range(1, 12)]
    evs = walk(rule, samples)
    fired = [i for i, e in enumerate(evs) if e.verdict is Verdict.FIRING]
    assert fired and fired[0] > 20
    first = evs[fired[0]].state.judge
    assert first.evidence["strongest_since"] > first.tests[0][0]  # not the first test


def test_without_baseline_traffic_the_floor_decides() -> None:
    rule = judge_rule(floor=0.05)
    evs = walk(rule, steady(100, 500), baselines={})
    assert evs[-1].verdict is Verdict.FIRING and "floor" in evs[-1].reason
    evs = walk(judge_rule(), steady(100, 500), baselines={})
    assert evs[-1].verdict is Verdict.INCONCLUSIVE and "baseline unavailable" in evs[-1].reason


def test_latency_as_a_bucket_ratio() -> None:
    rule = judge_rule(errors=None, good='lat_bucket{le="2.0"}', total="lat_count", floor=0.05)

    def lat(good: float, total: float) -> Sample:
        return Sample.of(Series(good, {ROLE: "good"}), Series(total, {ROLE: "total"}))

    base = {f'{{{ROLE}="good"}}': 35_900.0, f'{{{ROLE}="total"}}': 36_000.0}
    evs = walk(rule, [lat(800 * i, 1000 * i) for i in range(9)], base)  # 20 % over 2 s
    assert evs[-1].verdict is Verdict.FIRING
    assert evs[-1].state.judge.evidence["errors"] == 1600


def test_against_the_previous_version_serving_beside_it() -> None:
    rule = judge_rule(against="previous_version")

    def both(new: tuple[float, float], old: tuple[float, float]) -> Sample:
        return Sample.of(
            Series(new[0], {ROLE: "errors"}),
            Series(new[1], {ROLE: "total"}),
            Series(old[0], {ROLE: "base_errors"}),
            Series(old[1], {ROLE: "base_total"}),
        )

    bad = [both((50 * i, 1000 * i), (1 * i, 1000 * i)) for i in range(9)]
    evs = walk(rule, bad, None)
    assert evs[-1].verdict is Verdict.FIRING
    assert evs[-1].state.judge.evidence["baseline_requests"] == 8_000
    fine = [both((2 * i, 2000 * i), (2 * i, 2000 * i)) for i in range(9)]
    assert walk(rule, fine, None)[-1].verdict is Verdict.OK
    assert "previous_version" in rule.query and "{{ previous_version }}" in rule.query


def test_binomial_steps_have_no_extra_dispersion() -> None:
    rng = random.Random(3)
    steps = [(float(sum(rng.random() < 0.02 for _ in range(2000))), 2000.0) for _ in range(40)]
    phi, pairs = stats.dispersion(steps)
    assert pairs == 39 and phi < 1.6


def test_bursty_errors_are_measured_and_a_small_level_shift_barely() -> None:
    rng = random.Random(4)
    bursty = []
    for _ in range(40):
        p = min(0.2, max(0.0, rng.gauss(0.02, 0.007)))  # wanders a third either way
        bursty.append((float(sum(rng.random() < p for _ in range(5000))), 5000.0))
    # beta-binomial by construction: phi = 1 + (n - 1) tau2 / (p (1 - p)) ≈ 13
    assert 7 < stats.dispersion(bursty)[0] < 25
    # 2 % then 2.5 %: one small jump adds little
    shift = [(40.0, 2000.0)] * 20 + [(50.0, 2000.0)] * 20
    assert stats.dispersion(shift)[0] < 1.1


def bursty_stream(rng: random.Random) -> list[Sample]:
    """30 minutes at 1,000 requests/s, 1 % errors wandering (beta) between scrapes."""
    samples, e, n = [reading(0, 0)], 0.0, 0.0
    for _ in range(120):
        p = rng.betavariate(3, 297)  # like a retry storm here and there
        e, n = e + round(15_000 * p), n + 15_000
        samples.append(reading(e, n))
    return samples


def test_bursty_healthy_traffic_does_not_fire() -> None:
    """A proportion that wanders ±57 % between scrapes around the baseline is noise,
    not a regression: the dispersion keeps the test honest where a plain binomial test
    fires on the very same streams."""
    rng = random.Random(5)
    streams = [bursty_stream(rng) for _ in range(12)]
    base = {f'{{{ROLE}="errors"}}': 36_000.0, f'{{{ROLE}="total"}}': 3_600_000.0}  # 1 %
    rule = judge_rule(factor=1.5, tests=6, restart_every="5m", warmup="60s")

    def fired(stream: list[Sample]) -> bool:
        return any(ev.verdict is Verdict.FIRING for ev in walk(rule, stream, base))

    assert not any(fired(s) for s in streams)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats, "dispersion", lambda steps: (1.0, len(steps)))
        assert any(fired(s) for s in streams)


def test_the_state_survives_a_restart() -> None:
    evs = walk(judge_rule(), [reading(0, 0), reading(5, 1000)])
    state = evs[-1].state
    assert RuleState.from_json(state.to_json()) == state


# --- the rule file ---------------------------------------------------------------------
HEAD = "groups:\n  - name: g\n    rules:\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "      - name: a\n        source: judge\n        total: t\n",
            "exactly one of 'errors' or 'good'",
        ),
        (
            "      - name: a\n        source: judge\n        errors: e\n        total: t\n"
            "        threshold: '> 5%'\n",
            "judge rules take no 'threshold'",
        ),
        (
            "      - name: a\n        source: judge\n        errors: sum(rate(e[1m]))\n"
            "        total: t\n",
            "is not a counter selector",
        ),
        (
            "      - name: a\n        source: judge\n        errors: e\n        total: t\n"
            "        against: none\n",
            "against: none needs a 'floor'",
        ),
        (
            '      - name: a\n        source: judge\n        errors: e{s="{{ nope }}"}\n'
            "        total: t\n",
            "unknown template variable",
        ),
    ],
)
def test_bad_judge_rules_are_named_with_file_and_line(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(HEAD + body)
    found = check_report([path])[1]
    assert len(found) == 1 and expected in found[0] and "r.yml:" in found[0], found


def test_the_query_tags_each_counter_and_the_baseline_sums_the_period() -> None:
    rule = judge_rule(before={"offset": "5m", "range": "1h"})
    assert rule.query == (
        'label_replace(http_requests_total{status="5xx"}, "watchdog_judge", "errors", "", "")'
        ' or label_replace(http_requests_total, "watchdog_judge", "total", "", "")'
    )
    assert rule.baseline is not None and rule.baseline.offset == 300
    assert 'sum(increase(http_requests_total{status="5xx"}[3600s]))' in rule.baseline.query


# --- the evidence people see -------------------------------------------------------------
def test_status_page_and_cli_show_the_evidence() -> None:
    from watchdog.cli.render import render_rules
    from watchdog.judge.words import judge_view
    from watchdog.lifecycle.windows import _view
    from watchdog.web.status_html import rule_card
    from watchdog.web.window_schemas import RuleOut

    rule = judge_rule()
    state = walk(rule, [reading(0, 0), reading(1, 20), reading(3, 40)])[-1].state
    view = judge_view(_view(rule, state, None), rule, state)
    assert view.threshold.startswith("judge: limit 0.") and "alpha 0.001" in view.threshold
    html = rule_card(view, [])
    assert "evidence: 3 of 40 bad (7.5%)" in html and "baseline 0.1% of 36,000" in html
    assert "needs ~" in html and "confidence" in html
    out = RuleOut.of(view).model_dump(mode="json")
    assert out["evidence"]["requests"] == 40 and out["evidence"]["limit"] == view.threshold_value
    text = render_rules([out])
    assert "evidence j: 3 of 40 bad (7.5%)" in text and "judge: limit" in text


def test_a_burst_counts_but_a_sustained_shift_does_not() -> None:
    calm = [(20.0, 2000.0)] * 30
    burst = [*calm, (200.0, 2000.0), *calm[:5]]  # one step at 10 %, then back to 1 %
    shift = [*calm, *[(200.0, 2000.0)] * 6]  # 1 % → 10 % and staying there
    assert stats.dispersion(burst)[0] > 5
    assert stats.dispersion(shift)[0] < 1.1
    assert stats.dispersion([*calm, (200.0, 2000.0)])[0] > 5  # at the end: a burst, so far


def test_an_empty_first_answer_does_not_make_history_count() -> None:
    """Counters missing at the first polls (a scrape gap at open) are a starting point
    when they appear, not requests born in the window."""
    evs = walk(
        judge_rule(),
        [Sample.no_data("empty result"), reading(5_000, 90_000), reading(5_001, 91_000)],
    )
    ev = evs[-1].state.judge.evidence
    assert (ev["errors"], ev["requests"]) == (1, 1000)


def test_the_shipped_judge_pack_loads_with_the_exporters_names() -> None:
    repo = Path(__file__).resolve().parents[2]
    shipped = load_rules([repo / "rules" / "api.yml", repo / "rules" / "judge"]).rules
    rules = {r.name: r for r in shipped if r.source == "judge"}
    assert set(rules) == {
        "api-5xx-judged",
        "api-p95-judged",
        "celery-failures-judged",
        "webhook-validation-judged",
    }
    assert all(isinstance(r, JudgeRule) and r.alpha == ALPHA for r in rules.values())
    # "5xx" (grouped, the default) and "500" (ungrouped) both match
    assert 'status=~"5.."' in rules["api-5xx-judged"].query
    assert (
        'http_request_duration_highr_seconds_bucket{ {{ service_label }}="{{ service }}",le="2.0"}'
        in (rules["api-p95-judged"].query)
    )
    assert 'flower_events_total{service="{{ service }}",type="task-succeeded"}' in (
        rules["celery-failures-judged"].query
    )
    assert rules["webhook-validation-judged"].action.value == "notify"


ABSURD = {
    "1.7e308": 1.7e308,
    "inf": math.inf,
    "-inf": -math.inf,
    "nan": math.nan,
    "negative": -5.0,
    "past 2**53": 2.0**54,
}


@pytest.mark.parametrize("role", ["errors", "total"])
@pytest.mark.parametrize("bad", ABSURD.values(), ids=ABSURD.keys())
@pytest.mark.parametrize("at", [0, 2, 8], ids=["first", "third", "last but one"])
def test_an_absurd_counter_reading_never_poisons_the_counts(role: str, bad: float, at: int) -> None:
    # Issue 25: one reading of 1.7e308 made every later increase look like a reset, and
    # a 50 % error rate read "ok". The series keeps its last believable reading instead.
    # The sample holding it is skipped whole, like a failed poll, and says why.
    samples = steady(250, 500, steps=10)
    errors, total = (s.value for s in samples[at].series)
    samples[at] = reading(bad, total) if role == "errors" else reading(errors, bad)
    evs = walk(judge_rule(), samples)
    assert evs[at].verdict is Verdict.INCONCLUSIVE
    assert f"a {role} counter read {bad:g}, which no counter can hold" in evs[at].reason
    assert evs[-1].verdict is Verdict.FIRING, evs[-1].reason
    ev = evs[-1].state.judge.evidence
    assert (ev["errors"], ev["requests"]) == (2500 - 250 * (at == 0), 5000 - 500 * (at == 0))
    assert all(0 <= v <= 5000 for v in evs[-1].state.judge.last.values())
