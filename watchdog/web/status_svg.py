"""Inline SVG graphs for the status page: a rule's values against its threshold.

No JavaScript and nothing fetched: each graph is a few lines of SVG in the page. The
value line is a polyline (broken where there was no data), each point a small circle
coloured by its verdict, the threshold a dashed red line, the baseline a dotted grey one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from watchdog.store.base import RulePoint

WIDTH = 320
HEIGHT = 96
PAD_X = 4
PAD_TOP = 8
PAD_BOTTOM = 14


@dataclass(frozen=True)
class Scale:
    """Maps (time, value) onto the SVG's coordinates."""

    t0: float
    t1: float
    v0: float
    v1: float

    def x(self, t: float) -> float:
        """Horizontal position of time ``t``."""
        span = self.t1 - self.t0
        frac = 0.5 if span <= 0 else (t - self.t0) / span
        return PAD_X + frac * (WIDTH - 2 * PAD_X)

    def y(self, v: float) -> float:
        """Vertical position of value ``v`` (larger values higher up)."""
        span = self.v1 - self.v0
        frac = 0.5 if span <= 0 else (v - self.v0) / span
        return PAD_TOP + (1.0 - frac) * (HEIGHT - PAD_TOP - PAD_BOTTOM)


def scale_for(points: Sequence[RulePoint], lines: Sequence[float]) -> Scale:
    """A scale showing every point and every horizontal line, with a little headroom."""
    values = [p.value for p in points if p.value is not None] + list(lines)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo = 0.0 if lo >= 0 else lo  # non-negative data (ratios, counts) sits on zero
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    times = [p.at for p in points] or [0.0]
    return Scale(min(times), max(times), lo if lo == 0 else lo - pad, hi + pad)


def _segments(points: Sequence[RulePoint], s: Scale) -> list[str]:
    """Polyline ``points`` attributes; a point without a value breaks the line."""
    out: list[list[str]] = [[]]
    for p in points:
        if p.value is None:
            if out[-1]:
                out.append([])
            continue
        out[-1].append(f"{s.x(p.at):.1f},{s.y(p.value):.1f}")
    return [" ".join(seg) for seg in out if seg]


def _hline(value: float, s: Scale, css: str, label: str) -> str:
    y = f"{s.y(value):.1f}"
    return (
        f'<line class="{css}" x1="{PAD_X}" x2="{WIDTH - PAD_X}" y1="{y}" y2="{y}"/>'
        f'<text class="{css}-label" x="{WIDTH - PAD_X}" y="{float(y) - 2:.1f}" '
        f'text-anchor="end">{escape(label)} {value:.4g}</text>'
    )


def graph(
    points: Sequence[RulePoint], threshold: float | None, baseline: float | None, title: str
) -> str:
    """The SVG for one rule (an empty frame saying so when there are no points yet)."""
    lines = [v for v in (threshold, baseline) if v is not None]
    s = scale_for(points, lines)
    parts = [
        f'<svg class="graph" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-points="{len(points)}">',
        f'<rect class="frame" x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>',
    ]
    if baseline is not None:
        parts.append(_hline(baseline, s, "baseline", "baseline"))
    if threshold is not None:
        parts.append(_hline(threshold, s, "threshold", "threshold"))
    parts += [f'<polyline class="values" points="{seg}"/>' for seg in _segments(points, s)]
    for p in points:
        if p.value is not None:
            parts.append(
                f'<circle class="pt {p.verdict.value}" cx="{s.x(p.at):.1f}" '
                f'cy="{s.y(p.value):.1f}" r="1.8"/>'
            )
    if not points:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">no evaluations yet</text>'
        )
    else:
        parts.append(
            f'<text class="axis" x="{PAD_X}" y="{HEIGHT - 3}">{s.v0:.3g} … {s.v1:.3g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
