"""The judge's verdict: pure, like :func:`watchdog.evaluation.evaluate.evaluate` (which calls it).

Each evaluation folds the counter readings into the counts (:mod:`watchdog.judge.count`),
starts the tests that are due (``warmup``, then every ``restart_every``, ``tests`` in all,
each at ``alpha / tests``: a fault that starts late is weighed on its own, not diluted by
the healthy minutes before it), and asks :mod:`watchdog.judge.stats` whether any test has
shown the error proportion above the limit (:mod:`watchdog.judge.limit`). Errors that
come in bursts weigh less: by how much is learnt from the period before the deploy (its
five-minute blocks) and from the window's own steps, whichever says more. With ``by``,
the whole service takes half of ``alpha`` and the endpoints carrying ``min_share`` of
the traffic share the other half (a family-wise split).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from watchdog.evaluation.evaluate import WHOLE, Evaluation, Observation
from watchdog.foundation.judgestate import Counts, JudgeState, Tests
from watchdog.foundation.model import RuleState, Sample, SampleKind, Verdict
from watchdog.judge import stats
from watchdog.judge.count import absurd, advance
from watchdog.judge.limit import Index, Limit, before_counts, burstiness, index, limit_for
from watchdog.rulefile.judge import BLOCK_SECONDS, ROLE, JudgeRule
from watchdog.rulefile.schema import Policy

__all__ = ["Limit", "advance", "decide", "judge"]


@dataclass(frozen=True)
class Burst:
    """How much bursts weaken the counts: ``rho`` per five-minute block (the period
    before), trusted when it rests on ``blocks`` blocks."""

    rho: float = 0.0
    blocks: int = 0
    worst: float | None = None  # the worst block's proportion before: a step counts no more


def judge(
    rule: JudgeRule,
    state: RuleState,
    sample: Sample,
    now: float,
    baselines: Mapping[str, float] | None = None,
) -> Evaluation:
    """Count, test, and say ok / inconclusive / firing with the evidence."""
    if (why := absurd(sample)) is not None:
        sample = Sample.failed(why, transient=False)
    if sample.kind is SampleKind.ERROR:
        return _blind(rule, state, sample, now)
    base = index(baselines)
    burst = Burst(*burstiness(base))
    js = advance(rule, state.judge, sample, now, burst.worst)
    verdict, evidence, reason, limit = judge_all(rule, js, now, base, burst)
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


def judge_all(
    rule: JudgeRule,
    js: JudgeState,
    now: float,
    base: Index,
    burst: Burst,
) -> tuple[Verdict, dict[str, Any], str, Limit]:
    """The whole service's verdict, overruled by an endpoint's firing one."""
    serving = bool(js.base_steps) and js.base_steps[-1][1] > 0
    share = rule.alpha / 2.0 if rule.by else rule.alpha
    whole = limit_for(rule, before_counts(rule, base), _concurrent(rule, js.base, serving), share)
    verdict, evidence, reason = decide(rule, js.tests, whole, now, burst, js.steps)
    if verdict is Verdict.OK and _good_missing(rule, js):
        return Verdict.INCONCLUSIVE, evidence, _GOOD_MISSING.format(rule.good), whole
    if not rule.by or verdict is Verdict.FIRING:
        return verdict, evidence, reason, whole
    judged = _judged_groups(rule, js)
    for key in judged:
        track = js.groups[key]
        before = before_counts(rule, base, key)
        limit = limit_for(rule, before, _concurrent(rule, track.base, serving), share / len(judged))
        v, ev, why = decide(rule, track.tests, limit, now, burst, ())
        if v is Verdict.FIRING:
            return v, {**ev, "endpoint": key}, f"{key}: {why}", limit
    evidence["endpoints"] = len(judged)
    return verdict, evidence, reason, whole


_GOOD_MISSING = (
    "inconclusive: requests counted, but `good` ({}) matches no series: every request "
    "would count as good (a histogram without that `le` bucket?)"
)


def _good_missing(rule: JudgeRule, js: JudgeState) -> bool:
    """A latency rule whose fast-requests bucket does not exist can never fire: say so
    rather than reading every request as fast."""
    if rule.good is None or not js.tests or js.tests[0][1].total <= 0:
        return False
    tag = repr((ROLE, "good"))  # how count.increments keys a series' labels
    return not any(tag in key for key in js.last)


def _concurrent(rule: JudgeRule, base: Counts, serving: bool) -> Counts | None:
    """The previous version's counts, when they are the baseline."""
    if rule.against == "previous_version" or (rule.against == "auto" and serving):
        return base
    return None


def _judged_groups(rule: JudgeRule, js: JudgeState) -> list[str]:
    """Endpoints carrying at least ``min_share`` of the traffic counted so far."""
    total = js.tests[0][1].total if js.tests else 0.0
    out = []
    for key, track in sorted(js.groups.items()):
        seen = track.tests[0][1].total if track.tests else 0.0
        if total > 0 and seen >= rule.min_share * total and key != "{}":
            out.append(key)
    return out


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


def _phi(tests: Tests, now: float, burst: Burst, steps: Any) -> tuple[float, bool]:
    """The weight divisor for bursts, and whether it can be trusted yet."""
    phi, trusted = 1.0, burst.blocks >= stats.MIN_BLOCKS
    if tests and burst.rho > 0:
        at, seen = tests[0]
        per_block = seen.total / max(1.0, (now - at) / BLOCK_SECONDS)
        phi = 1.0 + burst.rho * per_block
    if steps:
        window, pairs = stats.dispersion(steps)
        if pairs >= stats.MIN_PAIRS:
            phi, trusted = max(phi, window), True
    return phi, trusted


def decide(
    rule: JudgeRule,
    tests: Tests,
    limit: Limit,
    now: float,
    burst: Burst | None = None,
    steps: Any = (),
) -> tuple[Verdict, dict[str, Any], str]:
    """The verdict, the evidence behind it, and the sentence people read."""
    seen = tests[0][1] if tests else Counts()
    evidence: dict[str, Any] = {
        "errors": seen.errors,
        "requests": seen.total,
        "proportion": seen.proportion,
        "baseline": limit.baseline.proportion if limit.baseline else None,
        "baseline_errors": limit.baseline.errors if limit.baseline else None,
        "baseline_requests": limit.baseline.total if limit.baseline else None,
        "limit": limit.p0,
        "alpha": rule.alpha,
        "tests": len(tests),
    }
    if limit.p0 is None:
        evidence.update(confidence=0.0, needed=None)
        return Verdict.INCONCLUSIVE, evidence, f"inconclusive: {limit.note}"
    p0, threshold = limit.p0, math.log(1.0 / limit.level)
    phi, trusted = _phi(tests, now, burst or Burst(), steps)
    best, since = _strongest(tests, p0, phi)
    needed = stats.requests_to_tell(p0, limit.level) * phi
    evidence.update(
        confidence=stats.confidence(best),
        needed=needed if math.isfinite(needed) else None,
        strongest_since=since,
        dispersion=phi if phi > 1.0 else None,
    )
    if best >= threshold and trusted:
        return Verdict.FIRING, evidence, _sentence("firing", evidence, limit)
    if trusted and seen.total < needed:  # few requests: its upper bound may still tell
        upper = stats.upper_bound_always(seen.errors / phi, seen.total / phi, limit.level)
        evidence["upper"] = upper
        if upper < p0:
            return Verdict.OK, evidence, _sentence("ok", evidence, limit)
    if not trusted or seen.total < needed:
        return Verdict.INCONCLUSIVE, evidence, _sentence("inconclusive", evidence, limit)
    return Verdict.OK, evidence, _sentence("ok", evidence, limit)


def _strongest(tests: Tests, p0: float, phi: float) -> tuple[float, float | None]:
    """The largest log-evidence among the tests (counts weighed by ``1/phi``).

    A test whose proportion is at or below the limit has ``Λ < 1``: it cannot fire and
    is not computed.
    """
    best, since = 0.0, None
    for at, c in tests:
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
        where = "previous version beside it" if limit.concurrent else "baseline"
        text += (
            f" ({where} {_pct(limit.baseline.proportion)} of {limit.baseline.total:.0f},"
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
