"""Tables for bench/decisions.py: false rollbacks, catches, delays, inconclusive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from bench.decisions_data import BAD_KINDS, BANDS

if TYPE_CHECKING:
    from bench.decisions import Outcome


def upper95(k: int, n: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of a rate ``k / n``."""
    if n == 0:
        return 1.0
    return 1.0 if k >= n else float(stats.beta.ppf(0.95, k + 1, n - k))


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.2f} %)" if n else "-"


def _delays(outcomes: Sequence[Outcome]) -> str:
    d = [o.delay for o in outcomes if o.delay is not None]
    if not d:
        return "- | -"
    p50, p95 = np.percentile(d, [50, 95])
    return f"{p50:.0f} s | {p95:.0f} s"


def _row(outcomes: Sequence[Outcome]) -> str:
    healthy = [o for o in outcomes if o.scenario.healthy]
    bad = [o for o in outcomes if not o.scenario.healthy]
    false = sum(o.rollback_at is not None for o in healthy)
    caught = sum(o.caught for o in bad)
    inconclusive = sum(o.inconclusive for o in outcomes)
    return (
        f"{_pct(false, len(healthy))} | {100 * upper95(false, len(healthy)):.2f} % | "
        f"{_pct(caught, len(bad))} | {_delays(bad)} | {inconclusive}"
    )


def _subset(outcomes: Sequence[Outcome], keep: Callable[[Outcome], bool]) -> list[Outcome]:
    return [o for o in outcomes if keep(o)]


def report(results: dict[str, list[Outcome]]) -> str:
    """Markdown: overall, per band, per fault kind, the targets, delays on shared catches."""
    head = (
        "| pack | false rollbacks (healthy) | 95 % upper bound | regressions caught | "
        "delay p50 | delay p95 | inconclusive |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    lines += [f"| {pack} | {_row(out)} |" for pack, out in results.items()]
    lines += ["", "Per traffic band (requests/s):", ""]
    lines += [
        "| band | pack | false rollbacks | 95 % upper | caught | p50 | p95 | inconclusive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for band in BANDS:
        for pack, out in results.items():
            sub = _subset(out, lambda o, b=band: o.scenario.rps == b)
            lines.append(f"| {band:g} | {pack} | {_row(sub)} |")
    lines += ["", "Regressions caught by kind of fault:", ""]
    lines += ["| kind | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for kind in BAD_KINDS:
        cells = []
        for out in results.values():
            sub = _subset(out, lambda o, k=kind: o.scenario.kind == k)
            cells.append(_pct(sum(o.caught for o in sub), len(sub)))
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", *_targets(results)]
    return "\n".join(lines)


def _wrong(o: Outcome) -> bool:
    """A false rollback, or a regression missed without saying "inconclusive"."""
    if o.scenario.healthy:
        return o.rollback_at is not None
    return not o.caught and not o.inconclusive


def _targets(results: dict[str, list[Outcome]]) -> list[str]:
    out = []
    for pack, outcomes in results.items():
        target = _subset(outcomes, lambda o: o.scenario.tripled and o.scenario.rps >= 1)
        low = _subset(outcomes, lambda o: o.scenario.rps < 1)
        wrong_low = sum(_wrong(o) for o in low)
        out.append(
            f"- {pack}: bad deploys with ≥ 3x the baseline error rate at ≥ 1 request/s caught "
            f"within the window: {_pct(sum(o.caught for o in target), len(target))}; "
            f"below 1 request/s: {sum(o.inconclusive for o in low)} of {len(low)} inconclusive, "
            f"{wrong_low} wrong (a false rollback, or a regression missed while saying ok)."
        )
    cells = []
    for band in BANDS[1:]:
        per = []
        for pack, outcomes in results.items():
            sub = _subset(outcomes, lambda o, b=band: o.scenario.tripled and o.scenario.rps == b)
            per.append(f"{pack} {_pct(sum(o.caught for o in sub), len(sub))}")
        cells.append(f"{band:g}/s: " + ", ".join(per))
    out.append("- ≥ 3x the baseline, caught, by band: " + "; ".join(cells) + ".")
    if {"threshold", "judge"} <= results.keys():
        pairs = [
            (t.delay, j.delay)
            for t, j in zip(results["threshold"], results["judge"], strict=True)
            if t.delay is not None and j.delay is not None
        ]
        if pairs:
            t50, j50 = np.median([p[0] for p in pairs]), np.median([p[1] for p in pairs])
            out.append(
                f"- On the {len(pairs)} regressions both packs catch, median delay: "
                f"threshold {t50:.0f} s, judge {j50:.0f} s."
            )
    return out
