"""Counter readings into counts: increments per series, summed per role and endpoint.

A reading below the last one is a counter reset (the new reading is the increment); a
series first seen after the window opened was born in it (absent was zero); a series
missing for a while keeps its last reading, so a scrape gap is not counted twice; a
reading no counter can hold (NaN, infinite, negative, past 2**53) is skipped the same
way, so it never becomes a count or the reading the next one is measured from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from watchdog.foundation.judgestate import (
    MAX_GROUPS,
    MAX_SERIES,
    MAX_STEPS,
    Counts,
    JudgeState,
    Tests,
    Track,
)
from watchdog.foundation.model import Sample, series_key
from watchdog.rulefile.judge import ROLE, JudgeRule
from watchdog.sources.counters import believable

Deltas = dict[str, dict[str, float]]  # endpoint key -> role -> increment


def group_of(rule: JudgeRule, labels: Mapping[str, str]) -> str:
    """The endpoint a series belongs to: its ``by`` labels (``""`` without ``by``)."""
    if not rule.by:
        return ""
    return series_key({k: labels[k] for k in rule.by if labels.get(k)})


def absurd(sample: Sample) -> str | None:
    """Why ``sample`` holds a reading no counter can, or None.

    Such a sample is skipped whole, like a failed poll (a reading skipped alone would
    leave a step's errors without their requests).
    """
    for series in sample.series:
        role = series.labels.get(ROLE)
        if role is not None and not believable(series.value):
            return (
                f"a {role} counter read {series.value:g}, which no counter can hold "
                "(NaN, infinite, negative or past 2**53): reading skipped"
            )
    return None


def increments(
    rule: JudgeRule, last: Mapping[str, float], sample: Sample, first: bool
) -> tuple[Deltas, dict[str, float]]:
    """Per-endpoint, per-role increments since ``last``, and the new readings."""
    seen = dict(last)
    out: Deltas = {}
    for series in sample.series:
        role = series.labels.get(ROLE)
        if role is None or not believable(series.value):
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
        roles = out.setdefault(group_of(rule, series.labels), {})
        roles[role] = roles.get(role, 0.0) + delta
    return out, seen


def counts(deltas: Mapping[str, float], prefix: str = "") -> Counts:
    """Errors among requests from one endpoint's role increments."""
    total = deltas.get(prefix + "total", 0.0)
    if prefix + "good" in deltas:
        errors = total - deltas[prefix + "good"]
    else:
        errors = deltas.get(prefix + "errors", 0.0)
    return Counts(min(max(errors, 0.0), total), total)


def split(
    rule: JudgeRule, deltas: Mapping[str, float], worst: float | None = None
) -> tuple[Counts, Counts]:
    """(the new version's counts, the previous version's): with ``against: auto`` every
    series is counted, so the previous version's are taken out of the whole.

    A step's errors count at most ``worst`` of its requests, the worst proportion a
    block reached before the deploy: a burst no worse than the bursts before is no
    evidence; a fault worse than them still counts, as that burst would."""
    new, base = counts(deltas), counts(deltas, "base_")
    if rule.against == "auto":
        new = new.minus(base)
    if worst is not None and worst > 0 and new.errors > worst * new.total:
        new = Counts(worst * new.total, new.total)
    return new, base


def _whole(per_group: Deltas) -> dict[str, float]:
    out: dict[str, float] = {}
    for roles in per_group.values():
        for role, value in roles.items():
            out[role] = out.get(role, 0.0) + value
    return out


def advance(
    rule: JudgeRule,
    js: JudgeState | None,
    sample: Sample,
    now: float,
    worst: float | None = None,
) -> JudgeState:
    """Fold one sample's readings into the counts and start the tests now due."""
    first = js is None or not js.last  # no reading yet: this one is the starting point
    current = js or JudgeState(opened_at=now)
    per_group, seen = increments(rule, current.last, sample, first)
    new, base = split(rule, _whole(per_group), worst)
    tests = [(at, c.plus(new)) for at, c in current.tests]
    age = now - current.opened_at
    while len(tests) < rule.tests and age >= rule.warmup + len(tests) * rule.restart_every:
        tests.append((now, Counts()))
    steps, base_steps = current.steps, current.base_steps
    if not first:
        steps = (*steps, (new.errors, new.total))[-MAX_STEPS:]
        base_steps = (*base_steps, (base.errors, base.total))[-MAX_STEPS:]
    return replace(
        current,
        last=seen,
        tests=tuple(tests),
        base=current.base.plus(base),
        steps=steps,
        base_steps=base_steps,
        groups=_groups(rule, current, per_group, tuple(tests), now, worst) if rule.by else {},
    )


def _groups(
    rule: JudgeRule,
    current: JudgeState,
    per_group: Deltas,
    whole: Tests,
    now: float,
    worst: float | None,
) -> dict[str, Track]:
    """Each endpoint's tests start with the whole service's (its counts before its first
    request were zero); endpoints beyond :data:`MAX_GROUPS` are judged in the whole only."""
    out = dict(current.groups)
    for key in sorted(set(out) | set(per_group)):
        track = out.get(key)
        if track is None and len(out) >= MAX_GROUPS:
            continue
        new, base = split(rule, per_group.get(key, {}), worst)
        old = dict(track.tests) if track else {}
        tests = tuple(
            (at, old.get(at, Counts()).plus(new) if at < now else Counts()) for at, _ in whole
        )
        out[key] = Track(tests, (track.base if track else Counts()).plus(base))
    return out
