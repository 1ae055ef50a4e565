"""A judge rule's graph: the new version's error proportion minus the baseline's, with
its 95 % interval as a band, over time; red where the judge's verdict was firing.

Like LaunchDarkly's guarded rollouts, this is what makes a statistical verdict
believable: the band narrows as requests come in, and the judge fires once the
evidence is strong enough that the difference sits above the limit. The limit is
drawn as a difference too (where it moves, because the baseline grows, it steps).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape

from watchdog.judge.evidence import Band, difference_band
from watchdog.store.base import RulePoint
from watchdog.web.status_axes import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Scale,
    time_axis,
    value_axis,
    value_range,
)
from watchdog.web.status_svg import Frame, markers_svg

Banded = tuple[RulePoint, Band]


def banded(points: Sequence[RulePoint]) -> list[Banded]:
    """The points that carry a judge's counts, with their band."""
    out = []
    for p in points:
        band = difference_band(p.evidence) if p.evidence else None
        if band is not None:
            out.append((p, band))
    return out


def _bands(rows: list[Banded], s: Scale) -> list[str]:
    """One quadrilateral per step, red when the later point was firing."""
    parts = []
    for (p, a), (q, b) in itertools.pairwise(rows):
        firing = " firing" if q.verdict.value == "firing" else ""
        x0, x1 = s.x(p.at), s.x(q.at)
        corners = (
            f"{x0:.1f},{s.y(a.high):.1f} {x1:.1f},{s.y(b.high):.1f} "
            f"{x1:.1f},{s.y(b.low):.1f} {x0:.1f},{s.y(a.low):.1f}"
        )
        parts.append(f'<polygon class="band{firing}" points="{corners}"/>')
        parts.append(
            f'<line class="diff{firing}" x1="{x0:.1f}" y1="{s.y(a.diff):.1f}" '
            f'x2="{x1:.1f}" y2="{s.y(b.diff):.1f}"/>'
        )
    return parts


def _limit(rows: list[Banded], s: Scale) -> str:
    steps = [f"{s.x(p.at):.1f},{s.y(b.limit):.1f}" for p, b in rows if b.limit is not None]
    if not steps:
        return ""
    last = next(b.limit for _, b in reversed(rows) if b.limit is not None)
    y = s.y(last)
    return (
        f'<polyline class="threshold" points="{" ".join(steps)}" fill="none"/>'
        f'<text class="threshold-label" x="{WIDTH - RIGHT - 2}" y="{y - 3:.1f}" '
        f'text-anchor="end">fires above {escape(_signed(last))}</text>'
    )


def _signed(value: float) -> str:
    sign = "+" if value >= 0 else "-"
    return f"{sign}{abs(100 * value):.3g} %"


def band_graph(points: Sequence[RulePoint], *, title: str, frame: Frame) -> str:
    """The SVG (empty string when no point carries counts: draw the plain graph)."""
    rows = banded(points)
    if not rows:
        return ""
    against = rows[-1][1].against_baseline
    values = [v for _, b in rows for v in (b.low, b.high, b.limit) if v is not None]
    lo, hi = value_range([*values, 0.0])
    times = [p.at for p, _ in rows] + [m.at for m in frame.markers]
    s = Scale(min([frame.t0, *times]), max([frame.t1, *times]), lo, hi)
    caption = "new - baseline, 95 % interval" if against else "error ratio, 95 % interval"
    zero = s.y(0.0)
    parts = [
        f'<svg class="graph band-graph" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: {caption}" data-points="{len(rows)}" data-unit="ratio">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}"/>',
        value_axis(s, "ratio"),
        time_axis(s),
        markers_svg(frame.markers, s),
        f'<line class="zero" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}"/>',
        *_bands(rows, s),
        _limit(rows, s),
        f'<text class="caption" x="{LEFT + 4}" y="{HEIGHT - BOTTOM - 4}">{caption}</text>',
        "</svg>",
    ]
    return "".join(parts)
