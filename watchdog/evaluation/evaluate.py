"""The one pure function that judges a sample: no I/O, no clock, table-tested.

Semantics, like Prometheus alerting rules:

* Each series of a sample is judged on its own, keyed by its labels.
* A series breaching for the first time becomes *pending*; it *fires* once the
  condition has held at every evaluation for the rule's ``for`` (``for: 0`` fires at once),
  less the scheduler's slack (:func:`for_slack`), the same the engine allows due times.
* A series that stops breaching, or disappears, or whose value is unknown, drops its
  pending state: missing data never carries a breach forward.
* No data (an empty result, NaN) and errors are judged by the rule's ``no_data`` and
  ``on_error`` policies: ``ok``, ``breach`` (the failure is the signal), or
  ``inconclusive`` (the default) which neither fires nor reads as healthy.
* A threshold relative to a missing baseline (not captured, no ``fallback``) is judged
  on its absolute clauses alone (``> 2 and > 2 * baseline`` becomes ``> 2``), and is
  inconclusive when it has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from watchdog.foundation.model import RuleState, Sample, SampleKind, Verdict
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.schema import Policy, RuleBase

WHOLE = "{}"  # series key used when the verdict concerns the whole sample
# A tick runs a few ms after its scheduled instant, by a varying amount: the engine
# counts a rule as due this much before its time, so `for` allows the same slack, or a
# rule pending for 29.987 s would miss `for: 30s` and wait one more interval.
DUE_SLACK = 0.25


def for_slack(interval: float) -> float:
    """How much short of ``for`` still counts as having held for ``for``.

    Never half an interval or more: evaluations are an interval apart, so the slack can
    absorb a tick's jitter but never let a rule fire one evaluation early.
    """
    return min(DUE_SLACK, interval / 2)


@dataclass(frozen=True)
class Observation:
    """One series' reading: breach, ok or inconclusive, and why."""

    key: str
    value: float | None
    status: Policy  # OK, BREACH or INCONCLUSIVE
    reason: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """What evaluate() concluded, and the state to persist."""

    verdict: Verdict
    state: RuleState
    value: float | None
    baseline: float | None
    observations: tuple[Observation, ...]
    reason: str | None


def _baseline_for(key: str, rule: RuleBase, baselines: Mapping[str, float] | None) -> float | None:
    if baselines:
        if key in baselines:
            return baselines[key]
        if len(baselines) == 1:
            return next(iter(baselines.values()))
    return rule.baseline.fallback if rule.baseline is not None else None


def observe(
    rule: RuleBase, sample: Sample, baselines: Mapping[str, float] | None = None
) -> list[Observation]:
    """Judge each series of ``sample`` against the rule's threshold and policies."""
    if sample.kind is SampleKind.ERROR:
        return [Observation(WHOLE, None, rule.on_error, f"error: {sample.error}")]
    if sample.kind is SampleKind.NO_DATA:
        return [Observation(WHOLE, None, rule.no_data, f"no data: {sample.error}")]
    out = []
    for series in sample.series:
        key, value = series.key, series.value
        if math.isnan(value):
            out.append(Observation(key, None, rule.no_data, "no data: value is NaN"))
            continue
        baseline = _baseline_for(key, rule, baselines)
        breached = rule.threshold.breached(value, baseline)
        if breached is None:
            out.append(Observation(key, value, Policy.INCONCLUSIVE, "baseline unavailable"))
            continue
        reason = (
            _fallback_reason(rule) if rule.threshold.uses_baseline and baseline is None else None
        )
        out.append(Observation(key, value, Policy.BREACH if breached else Policy.OK, reason))
    return out


def _fallback_reason(rule: RuleBase) -> str:
    absolute = " and ".join(c.describe() for c in rule.threshold.absolute)
    return f"baseline unavailable: judged on the absolute threshold {absolute}"


def _worst(values: list[float], rule: RuleBase) -> float | None:
    """The most alarming value: the smallest for ``<`` thresholds, else the largest."""
    if not values:
        return None
    low_is_bad = rule.threshold.clauses[0].op in {"<", "<="}
    return min(values) if low_is_bad else max(values)


def _series_verdicts(
    rule: RuleBase, state: RuleState, observations: list[Observation], now: float
) -> tuple[dict[str, float], list[Verdict]]:
    pending: dict[str, float] = {}
    verdicts: list[Verdict] = []
    needed = rule.for_ - for_slack(rule.effective_interval)
    for obs in observations:
        if obs.status is Policy.BREACH:
            since = state.pending_since.get(obs.key, now)
            pending[obs.key] = since
            verdicts.append(Verdict.FIRING if now - since >= needed else Verdict.PENDING)
        elif obs.status is Policy.INCONCLUSIVE:
            verdicts.append(Verdict.INCONCLUSIVE)
        else:
            verdicts.append(Verdict.OK)
    return pending, verdicts


def _rule_verdict(verdicts: list[Verdict]) -> Verdict:
    for candidate in (Verdict.FIRING, Verdict.PENDING, Verdict.INCONCLUSIVE):
        if candidate in verdicts:
            return candidate
    return Verdict.OK


def evaluate(
    rule: RuleBase,
    state: RuleState,
    sample: Sample,
    now: float,
    baselines: Mapping[str, float] | None = None,
) -> Evaluation:
    """Judge ``sample`` for ``rule`` given its previous ``state``; returns the new state."""
    if isinstance(rule, JudgeRule):
        # Imported here: the judge's statistics cost what setups without judge rules never pay.
        from watchdog.judge.evaluate import judge

        return judge(rule, state, sample, now, baselines)
    observations = observe(rule, sample, baselines)
    pending, verdicts = _series_verdicts(rule, state, observations, now)
    verdict = _rule_verdict(verdicts)
    breaching = [o.value for o in observations if o.status is Policy.BREACH and o.value is not None]
    known = [o.value for o in observations if o.value is not None]
    value = _worst(breaching, rule) if breaching else _worst(known, rule)
    worst = _worst([v for v in (value, state.worst_value) if v is not None], rule)
    reasons = [o.reason for o in observations if o.reason]
    reason = reasons[0] if reasons else sample.detail
    # Only a source that could not answer makes a rule blind; an empty answer is an answer.
    blind = sample.kind is SampleKind.ERROR and sample.transient
    new_state = RuleState(
        verdict=verdict,
        pending_since=pending,
        last_value=value,
        last_eval_at=now,
        fired_at=(state.fired_at or now) if verdict is Verdict.FIRING else None,
        failures=state.failures + 1 if blind else 0,
        reason=reason,
        worst_value=worst,
    )
    first_key = observations[0].key if observations else WHOLE
    return Evaluation(
        verdict=verdict,
        state=new_state,
        value=value,
        baseline=_baseline_for(first_key, rule, baselines) if rule.baseline else None,
        observations=tuple(observations),
        reason=reason,
    )
