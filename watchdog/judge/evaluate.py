"""The judge's verdict: pure, like :func:`watchdog.evaluate.evaluate` (which calls it).

Each evaluation turns the counter readings into increments (a reading below the last
one is a counter reset: the new reading is the increment; a series first seen after
the window opened was born in it), adds them to every running test, starts the tests
that are due (``warmup``, then every ``restart_every``, ``tests`` in all, each at
``alpha / tests``: a fault that starts late is weighed on its own, not diluted by the
healthy minutes before it), and asks :mod:`watchdog.judge.stats` whether any test has
shown the error proportion above the limit. The limit comes from the baseline's upper
confidence bound (at ``alpha / 2``; the tests share the other half), so a baseline
measured on little traffic widens the limit instead of risking a false rollback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from watchdog.evaluate import WHOLE, Evaluation, Observation
from watchdog.judge import stats
from watchdog.judge.state import MAX_SERIES, MAX_STEPS, Counts, JudgeState
from watchdog.model import RuleState, Sample, SampleKind, Verdict
from watchdog.rulefile.judge import ROLE, JudgeRule
from watchdog.rulefile.schema import Policy


@dataclass(frozen=True)
class Limit:
    """The proportion the tests test against, and where it came from."""

    p0: float | None  # None: no limit can be set (no baseline and no floor)
    baseline: Counts | None
    upper: float | None  # the baseline's upper confidence bound
    level: float  # each test's alpha
    note: str = ""


def judge(
    rule: JudgeRule,
    state: RuleState,
    sample: Sample,
    now: float,
    baselines: Mapping[str, float] | None = None,
) -> Evaluation:
    """Count, test, and say ok / inconclusive / firing with the evidence."""
    if sample.kind is SampleKind.ERROR:
        return _blind(rule, state, sample, now)
    js = advance(rule, state.judge, sample, now)
    limit = limit_for(rule, js, baselines)
    verdict, evidence, reason = decide(rule, js, limit)
    js = replace(js, evidence=evidence)
    value = evidence.get("proportion")
    new_state = RuleState(
        verdict=verdict,
        last_value=value,
        last_eval_at=now,
        fired_at=(state.fired_at or now) if verdict is Verdict.FIRING else None,
        failures=0,
        reason=reason,
        worst_value=max((v for v in (value, state.worst_value) if v is not None), default=None),
        judge=js,
    )
    status = {Verdict.FIRING: Policy.BREACH, Verdict.OK: Policy.OK}.get(
        verdict, Policy.INCONCLUSIVE
    )
    return Evaluation(
        verdict=verdict,
        state=new_state,
        value=value,
        baseline=limit.baseline.proportion if limit.baseline else None,
        observations=(Observation(WHOLE, value, status, reason),),
        reason=reason,
    )


def _blind(rule: JudgeRule, state: RuleState, sample: Sample, now: float) -> Evaluation:
    """The source failed: nothing is counted; the counts so far are kept."""
    reason = f"error: {sample.error}"
    new_state = replace(
        state,
        verdict=Verdict.INCONCLUSIVE,
        last_eval_at=now,
        failures=state.failures + 1,
        reason=reason,
        fired_at=None,
    )
    obs = Observation(WHOLE, None, Policy.INCONCLUSIVE, reason)
    return Evaluation(Verdict.INCONCLUSIVE, new_state, None, None, (obs,), reason)


def increments(
    last: Mapping[str, float], sample: Sample, first: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-role increments since ``last``, and the new readings."""
    seen = dict(last)
    by_role: dict[str, float] = {}
    for series in sample.series:
        role = series.labels.get(ROLE)
        if role is None or math.isnan(series.value):
            continue
        # repr of the sorted labels: unambiguous, and cheaper than the JSON series key
        key, value = repr(sorted(series.labels.items())), series.value
        before = seen.get(key)
        if before is None:
            if len(seen) >= MAX_SERIES:
                continue  # bounded memory: series beyond the cap are not counted
            delta = 0.0 if first else value  # born in the window (absent was zero)
        else:
            delta = value - before if value >= before else value  # a reset restarts at 0
        seen[key] = value
        by_role[role] = by_role.get(role, 0.0) + delta
    return by_role, seen


def _counts(deltas: Mapping[str, float], prefix: str = "") -> Counts:
    total = deltas.get(prefix + "total", 0.0)
    if prefix + "good" in deltas:
        errors = total - deltas[prefix + "good"]
    else:
        errors = deltas.get(prefix + "errors", 0.0)
    return Counts(min(max(errors, 0.0), total), total)


def advance(rule: JudgeRule, js: JudgeState | None, sample: Sample, now: float) -> JudgeState:
    """Fold one sample's readings into the counts and start the tests now due."""
    first = js is None or not js.last  # no reading yet: this one is the starting point
    current = js or JudgeState(opened_at=now)
    deltas, seen = increments(current.last, sample, first)
    now_counts = _counts(deltas)
    tests = [(at, counts.plus(now_counts)) for at, counts in current.tests]
    age = now - current.opened_at
    while len(tests) < rule.tests and age >= rule.warmup + len(tests) * rule.restart_every:
        tests.append((now, Counts()))
    steps = current.steps if first else (*current.steps, (now_counts.errors, now_counts.total))
    return replace(
        current,
        last=seen,
        tests=tuple(tests),
        base=current.base.plus(_counts(deltas, "base_")),
        steps=steps[-MAX_STEPS:],
    )


def _baseline_counts(
    rule: JudgeRule, js: JudgeState, baselines: Mapping[str, float] | None
) -> Counts | None:
    if rule.against == "previous_version":
        return js.base if js.base.total > 0 else None
    if rule.against == "none" or not baselines:
        return None
    got = {k: v for k, v in baselines.items() if v == v}
    deltas = {role: got.get(f'{{{ROLE}="{role}"}}', 0.0) for role in ("errors", "good", "total")}
    if rule.bad_role == "errors":
        deltas.pop("good")
    else:
        deltas.pop("errors")
    counts = _counts(deltas)
    return counts if counts.total > 0 else None


def limit_for(rule: JudgeRule, js: JudgeState, baselines: Mapping[str, float] | None) -> Limit:
    """The limit the tests use: from the baseline's upper bound, else the floor."""
    base = _baseline_counts(rule, js, baselines)
    if base is None:
        level = rule.alpha / rule.tests
        if rule.floor > 0:
            note = "" if rule.against == "none" else "no baseline traffic: judged on the floor"
            return Limit(rule.floor, None, None, level, note)
        return Limit(None, None, None, level, "baseline unavailable (no traffic before)")
    half = rule.alpha / 2.0
    if rule.against == "previous_version":
        upper = stats.upper_bound_always(base.errors, base.total, half)
    else:
        upper = stats.upper_bound_once(base.errors, base.total, half)
    p0 = max(rule.factor * upper, upper + rule.margin, rule.floor)
    if p0 >= 1.0:
        return Limit(None, base, upper, half / rule.tests, "baseline too uncertain to set a limit")
    return Limit(p0, base, upper, half / rule.tests)


def decide(rule: JudgeRule, js: JudgeState, limit: Limit) -> tuple[Verdict, dict[str, Any], str]:
    """The verdict, the evidence behind it, and the sentence people read."""
    seen = js.tests[0][1] if js.tests else Counts()
    evidence: dict[str, Any] = {
        "errors": seen.errors,
        "requests": seen.total,
        "proportion": seen.proportion,
        "baseline": limit.baseline.proportion if limit.baseline else None,
        "baseline_errors": limit.baseline.errors if limit.baseline else None,
        "baseline_requests": limit.baseline.total if limit.baseline else None,
        "limit": limit.p0,
        "alpha": rule.alpha,
        "tests": len(js.tests),
    }
    if limit.p0 is None:
        evidence.update(confidence=0.0, needed=None)
        return Verdict.INCONCLUSIVE, evidence, f"inconclusive: {limit.note}"
    p0, threshold = limit.p0, math.log(1.0 / limit.level)
    best, since = _strongest(js, p0, 1.0)
    needed = stats.requests_to_tell(p0, limit.level)
    # The dispersion only ever weakens the evidence and raises the requests needed, so
    # it is estimated only when it could change the verdict (it is the costly part).
    phi, pairs = 1.0, 0
    if best >= threshold or seen.total >= needed:
        phi, pairs = stats.dispersion(js.steps)
        if phi > 1.0:
            best, since = _strongest(js, p0, phi)
            needed *= phi
    evidence.update(
        confidence=stats.confidence(best),
        needed=needed if math.isfinite(needed) else None,
        strongest_since=since,
        dispersion=phi if pairs else None,
    )
    if best >= math.log(1.0 / limit.level) and pairs >= stats.MIN_PAIRS:
        return Verdict.FIRING, evidence, _sentence("firing", evidence, limit)
    if seen.total < needed or pairs < stats.MIN_PAIRS:
        return Verdict.INCONCLUSIVE, evidence, _sentence("inconclusive", evidence, limit)
    return Verdict.OK, evidence, _sentence("ok", evidence, limit)


def _strongest(js: JudgeState, p0: float, phi: float) -> tuple[float, float | None]:
    """The largest log-evidence among the tests (counts weighed by ``1/phi``).

    A test whose proportion is at or below the limit has ``Λ < 1``: it cannot fire and
    is not computed.
    """
    best, since = 0.0, None
    for at, c in js.tests:
        if c.total > 0 and c.errors > p0 * c.total:
            evidence = stats.log_evidence(c.errors / phi, c.total / phi, p0)
            if evidence > best:
                best, since = evidence, at
    return best, since


def _pct(p: float | None) -> str:
    return "n/a" if p is None else f"{100 * p:.3g}%"


def _sentence(verdict: str, ev: Mapping[str, Any], limit: Limit) -> str:
    text = (
        f"{verdict}: {ev['errors']:.0f} of {ev['requests']:.0f} requests bad "
        f"({_pct(ev['proportion'])}), limit {_pct(limit.p0)}"
    )
    if limit.baseline is not None:
        text += (
            f" (baseline {_pct(limit.baseline.proportion)} of {limit.baseline.total:.0f},"
            f" upper bound {_pct(limit.upper)})"
        )
    text += f"; confidence {100 * ev['confidence']:.2f}% (fires at {100 * (1 - limit.level):.4g}%)"
    if verdict == "inconclusive":
        needed = ev["needed"]
        text += f"; needs ~{needed:.0f} requests to tell" if needed else "; cannot tell"
    if (ev.get("dispersion") or 1.0) > 1.05:
        text += f"; errors bursty: counts weigh 1/{ev['dispersion']:.3g}"
    if limit.note:
        text += f"; {limit.note}"
    return text
