"""A judge rule's counts at one evaluation, and the new-vs-baseline difference they show.

The engine keeps each judge evaluation's counts beside its point
(:func:`point_evidence`, read from the rule state's persisted evidence, so nothing in
``watchdog/judge/`` is needed); the status page draws, over time, the difference
between the new version's error proportion and the baseline's with a 95 % interval
(:func:`difference_band`: Newcombe's hybrid score interval, built from two Wilson
intervals; without a baseline, the proportion's own Wilson interval). The interval is
for reading the graph; the verdict is the judge's sequential test, drawn where it fired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watchdog.foundation.model import RuleState

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval
_KEYS = ("errors", "requests", "baseline_errors", "baseline_requests", "limit")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def point_evidence(state: RuleState) -> dict[str, float] | None:
    """The counts a judge rule's state holds now (None for other rules)."""
    if state.judge is None:
        return None
    got = {k: _finite(state.judge.evidence.get(k)) for k in _KEYS}
    out = {k: v for k, v in got.items() if v is not None}
    return out if out.get("requests") else None


def wilson(errors: float, total: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (``(0, 1)`` without requests)."""
    if total <= 0:
        return 0.0, 1.0
    p = min(max(errors / total, 0.0), 1.0)
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Band:
    """The difference new - baseline, its interval, and the limit as a difference."""

    diff: float
    low: float
    high: float
    limit: float | None  # where the judge fires, as a difference from the baseline
    against_baseline: bool


def difference_band(ev: Mapping[str, float]) -> Band | None:
    """The band one evaluation's counts show (None without requests)."""
    k1, n1 = ev.get("errors", 0.0), ev.get("requests", 0.0)
    if n1 <= 0:
        return None
    p1 = k1 / n1
    l1, u1 = wilson(k1, n1)
    k2, n2 = ev.get("baseline_errors"), ev.get("baseline_requests")
    limit = ev.get("limit")
    if k2 is None or not n2:
        return Band(p1, l1, u1, limit, against_baseline=False)
    p2 = k2 / n2
    l2, u2 = wilson(k2, n2)
    low = (p1 - p2) - math.hypot(p1 - l1, u2 - p2)
    high = (p1 - p2) + math.hypot(u1 - p1, p2 - l2)
    return Band(p1 - p2, low, high, None if limit is None else limit - p2, True)
