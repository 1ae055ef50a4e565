"""Tables for the shapes benchmark: one per shape, the targets, the power curve."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from bench.decisions_report import upper95
from bench.decisions_shapes import BANDS, SHAPES, expected_errors
from bench.decisions_sim import Result

POWER_BINS = (0, 10, 30, 100, 300, 1000, 10_000, float("inf"))


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.1f} %)" if n else "-"


def _delay(rs: Sequence[Result]) -> str:
    d = [r.delay for r in rs if r.delay is not None]
    return f"{np.percentile(d, 50):.0f} s" if d else "-"


def _row(label: str, rs: Sequence[Result]) -> str:
    healthy = [r for r in rs if r.deploy.healthy]
    bad = [r for r in rs if not r.deploy.healthy]
    false = sum(r.fired_at is not None for r in healthy)
    target = [r for r in bad if r.deploy.tripled and expected_errors(r.deploy) >= 30]
    return (
        f"| {label} | {_pct(false, len(healthy))} | {100 * upper95(false, len(healthy)):.2f} % "
        f"| {_pct(sum(r.caught for r in bad), len(bad))} "
        f"| {_pct(sum(r.caught for r in target), len(target))} | {_delay(bad)} "
        f"| {sum(r.inconclusive for r in healthy)} / {sum(r.inconclusive for r in bad)} |"
    )


HEAD = (
    "| | false rollbacks | 95 % upper | bad caught | ≥ 3x with ≥ 30 expected errors caught "
    "| delay p50 | inconclusive (healthy / bad) |\n|---|---|---|---|---|---|---|"
)


def report(results: Sequence[Result]) -> str:
    """Markdown: all shapes, then one table per shape (by band), power curve, delays."""
    by_pack: dict[str, list[Result]] = {}
    for r in results:
        by_pack.setdefault(r.pack, []).append(r)
    lines = ["All shapes:", "", HEAD]
    lines += [_row(pack, rs) for pack, rs in by_pack.items()]
    for shape in SHAPES:
        lines += ["", f"Shape `{shape}`:", "", HEAD]
        for pack, rs in by_pack.items():
            sub = [r for r in rs if r.deploy.shape == shape]
            lines.append(_row(f"{pack}, all", sub))
            if pack == "judge":
                for band in BANDS:
                    lines.append(
                        _row(f"judge, {band:g}/s", [r for r in sub if r.deploy.rps == band])
                    )
    lines += ["", *_power(by_pack.get("judge", [])), "", *_delays(by_pack)]
    return "\n".join(lines)


def _power(rs: Sequence[Result]) -> list[str]:
    bad = [r for r in rs if r.deploy.tripled]
    out = [
        "Power curve (judge; bad deploys with ≥ 3x, by errors expected in the window at "
        "the regressed rate in the regressed slice):",
        "",
        "| expected errors | caught | inconclusive | missed saying ok |",
        "|---|---|---|---|",
    ]
    for lo, hi in itertools.pairwise(POWER_BINS):
        sub = [r for r in bad if lo <= expected_errors(r.deploy) < hi]
        ok = sum(not r.caught and not r.inconclusive for r in sub)
        out.append(
            f"| {lo:g}-{hi:g} | {_pct(sum(r.caught for r in sub), len(sub))} "
            f"| {sum(r.inconclusive for r in sub)} | {ok} |"
        )
    return out


def _delays(by_pack: dict[str, list[Result]]) -> list[str]:
    if {"judge", "threshold"} - by_pack.keys():
        return []
    pairs = [
        (t.delay, j.delay)
        for j, t in zip(by_pack["judge"], by_pack["threshold"], strict=True)
        if t.delay is not None and j.delay is not None
    ]
    if not pairs:
        return []
    t50, j50 = np.median([p[0] for p in pairs]), np.median([p[1] for p in pairs])
    return [
        f"On the {len(pairs)} regressions both catch, median delay: threshold {t50:.0f} s, "
        f"judge {j50:.0f} s."
    ]
