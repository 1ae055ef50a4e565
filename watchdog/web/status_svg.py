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

from watchdog.rulefile.units import value_text
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
from watchdog.web.status_story import Marker

MARKER_ROWS = 3  # rows of marker labels above the plot (TOP leaves room for them)


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


def _label_span(x: float, label: str) -> tuple[float, float, str]:
    """Where a marker's label goes: right of its line, or left of it near the edge."""
    width = 6.2 * len(label) + 4
    if x + width > WIDTH - RIGHT:
        return x - width, x, "end"
    return x, x + width, "start"


def markers_svg(markers: Sequence[Marker], s: Scale) -> str:
    """Vertical lines, labelled along the top; a label that would touch another takes
    the next row down (three rows; a fourth close marker shares the last)."""
    parts: list[str] = []
    rows: list[list[tuple[float, float]]] = [[] for _ in range(MARKER_ROWS)]
    for m in markers:
        x = s.x(m.at)
        lo, hi, anchor = _label_span(x, m.label)
        row = next(
            (i for i, taken in enumerate(rows) if all(hi < a or lo > b for a, b in taken)),
            MARKER_ROWS - 1,
        )
        rows[row].append((lo, hi))
        y = 10 + 11 * row
        parts.append(
            f'<g class="marker {escape(m.kind)}"><title>{escape(m.label)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" y2="{HEIGHT - BOTTOM}"/>'
            f'<text x="{x + (2 if anchor == "start" else -2):.1f}" y="{y}" '
            f'text-anchor="{anchor}">{escape(m.label)}</text></g>'
        )
    return "".join(parts)


def nodata_spans(points: Sequence[RulePoint], s: Scale) -> str:
    """Grey bands where evaluations had no value (no data, a blind source)."""
    spans: list[tuple[float, float]] = []
    for i, p in enumerate(points):
        if p.value is not None:
            continue
        nxt = points[i + 1].at if i + 1 < len(points) else p.at
        if spans and spans[-1][1] == p.at:
            spans[-1] = (spans[-1][0], nxt)
        else:
            spans.append((p.at, nxt))
    parts = []
    for a, b in spans:
        x0, x1 = s.x(a), max(s.x(b), s.x(a) + 2)
        parts.append(
            f'<rect class="nodata" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
            f'height="{HEIGHT - TOP - BOTTOM}"><title>no value</title></rect>'
        )
    if spans:
        a, b = max(spans, key=lambda sp: sp[1] - sp[0])
        parts.append(
            f'<text class="nodata-label" x="{(s.x(a) + s.x(b)) / 2:.1f}" '
            f'y="{(HEIGHT - BOTTOM + TOP) / 2:.1f}" text-anchor="middle">no data</text>'
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
        nodata_spans(points, s),
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
