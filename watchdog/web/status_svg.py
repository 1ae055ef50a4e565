"""Inline SVG graphs for the status page: a rule's values against its limit, over time.

No JavaScript and nothing fetched: each graph is SVG in the page. The time axis is
wall-clock UTC; the value axis is in the rule's unit (29.2 %, 450 ms). The value line
is a polyline (broken where there was no data), each point coloured by its verdict; the
limit a dashed red line, the baseline a dotted grey one; the deploy, the rollback's start
and end and the recovery are vertical markers on every graph of the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from watchdog.store.base import RulePoint
from watchdog.units import value_text
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
from watchdog.web.status_story import Marker

_LABEL_GAP = 70  # px between marker labels on one row; closer ones take the next row


@dataclass(frozen=True)
class Frame:
    """What every graph of a window shares: its time span and its markers."""

    t0: float
    t1: float
    markers: Sequence[Marker] = ()


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


def hline(value: float, s: Scale, css: str, label: str, unit: str) -> str:
    """A horizontal line across the plot, labelled at its right end."""
    y = s.y(value)
    return (
        f'<line class="{css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        f'<text class="{css}-label" x="{WIDTH - RIGHT - 2}" y="{y - 3:.1f}" '
        f'text-anchor="end">{escape(label)} {escape(value_text(value, unit))}</text>'
    )


def markers_svg(markers: Sequence[Marker], s: Scale) -> str:
    """Vertical lines, labelled along the top; labels that would touch take a lower row."""
    parts: list[str] = []
    ends = [-1e9, -1e9]  # right end of the last label on each row
    for m in markers:
        x = s.x(m.at)
        row = 0 if x - ends[0] >= _LABEL_GAP else 1 if x - ends[1] >= _LABEL_GAP else 0
        ends[row] = x
        anchor = "end" if x > WIDTH - 60 else "start"
        y = 10 + 11 * row
        parts.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text x="{x + (2 if anchor == "start" else -2):.1f}" y="{y}" '
            f'text-anchor="{anchor}">{escape(m.label)}</text></g>'
        )
    return "".join(parts)


def _dots(points: Sequence[RulePoint], s: Scale) -> list[str]:
    return [
        f'<circle class="pt {p.verdict.value}" cx="{s.x(p.at):.1f}" cy="{s.y(p.value):.1f}" r="2"/>'
        for p in points
        if p.value is not None
    ]


def graph(
    points: Sequence[RulePoint],
    *,
    threshold: float | None,
    baseline: float | None,
    title: str,
    unit: str,
    frame: Frame,
) -> str:
    """The SVG for one rule (with a note in the frame while there are no points yet)."""
    lines = [v for v in (threshold, baseline) if v is not None]
    lo, hi = value_range([p.value for p in points if p.value is not None] + lines)
    times = [p.at for p in points] + [m.at for m in frame.markers]
    s = Scale(min([frame.t0, *times]), max([frame.t1, *times]), lo, hi)
    parts = [
        f'<svg class="graph" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-points="{len(points)}" data-unit="{escape(unit)}">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}"/>',
        value_axis(s, unit),
        time_axis(s),
        markers_svg(frame.markers, s),
    ]
    if baseline is not None:
        parts.append(hline(baseline, s, "baseline", "baseline", unit))
    if threshold is not None:
        parts.append(hline(threshold, s, "threshold", "limit", unit))
    parts += [f'<polyline class="values" points="{seg}"/>' for seg in _segments(points, s)]
    parts += _dots(points, s)
    if not points:
        parts.append(
            f'<text class="empty" x="{(WIDTH + LEFT) / 2}" y="{HEIGHT / 2}" '
            'text-anchor="middle">no evaluations yet</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
