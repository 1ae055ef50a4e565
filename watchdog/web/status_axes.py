"""Axes for the status page's graphs: a wall-clock time axis (UTC) and a value axis in
the rule's unit, with round tick steps, as SVG fragments."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from watchdog.rulefile.units import value_text

WIDTH = 360
HEIGHT = 190
LEFT = 50  # room for value labels
RIGHT = 8
TOP = 40  # room for marker labels (three rows)
BOTTOM = 30  # room for time labels and the axis title
# Round steps for the time axis, seconds: at most ~5 labels across the graph.
_TIME_STEPS = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


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
        return LEFT + frac * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        """Vertical position of value ``v`` (larger values higher up)."""
        span = self.v1 - self.v0
        frac = 0.5 if span <= 0 else (v - self.v0) / span
        return TOP + (1.0 - frac) * (HEIGHT - TOP - BOTTOM)


def nice_step(span: float, ticks: int = 4) -> float:
    """A 1-2-5 step giving about ``ticks`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= raw:
            return m * power
    return 10.0 * power


def value_range(values: list[float]) -> tuple[float, float]:
    """From zero (or the lowest negative value) to a round top above every value."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    lo = min(lo, 0.0)
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = nice_step(hi - lo)
    return math.floor(lo / step) * step, math.ceil(hi * 1.05 / step) * step


def _clock(ts: float, step: float) -> str:
    fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    return datetime.fromtimestamp(ts, tz=UTC).strftime(fmt)


def time_axis(s: Scale) -> str:
    """Tick marks with wall-clock labels along the bottom, and "time (UTC)"."""
    span = s.t1 - s.t0
    step = next((st for st in _TIME_STEPS if span / st <= 5), _TIME_STEPS[-1])
    first = math.ceil(s.t0 / step) * step
    base = HEIGHT - BOTTOM
    parts = [f'<g class="axis-x"><line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>']
    t = first
    while t <= s.t1 + 1e-6:
        x = f"{s.x(t):.1f}"
        parts.append(
            f'<line class="tick" x1="{x}" x2="{x}" y1="{base}" y2="{base + 4}"/>'
            f'<text x="{x}" y="{base + 14}" text-anchor="middle">{_clock(t, step)}</text>'
        )
        t += step
    parts.append(
        f'<text class="axis-title" x="{WIDTH - RIGHT}" y="{HEIGHT - 3}" '
        'text-anchor="end">time (UTC)</text></g>'
    )
    return "".join(parts)


def value_axis(s: Scale, unit: str) -> str:
    """Grid lines with labels in the rule's unit along the left."""
    step = nice_step(s.v1 - s.v0)
    parts = ['<g class="axis-y">']
    v = s.v0
    while v <= s.v1 + step * 1e-6:
        y = f"{s.y(v):.1f}"
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
            f'<text x="{LEFT - 4}" y="{float(y) + 3:.1f}" text-anchor="end">'
            f"{escape(value_text(round(v, 12), unit))}</text>"
        )
        v += step
    parts.append("</g>")
    return "".join(parts)
