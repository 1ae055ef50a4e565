"""The inline SVG graph: where points, gaps, threshold and baseline land."""

from __future__ import annotations

import re

from watchdog.model import Verdict
from watchdog.store.base import RulePoint
from watchdog.web.status_svg import HEIGHT, PAD_BOTTOM, PAD_TOP, graph, scale_for


def pts(*values: float | None) -> list[RulePoint]:
    verdicts = {None: Verdict.INCONCLUSIVE}
    return [
        RulePoint.of(100.0 + i, v, verdicts.get(v, Verdict.FIRING if (v or 0) > 1 else Verdict.OK))
        for i, v in enumerate(values)
    ]


def polylines(svg: str) -> list[list[tuple[float, float]]]:
    out = []
    for attr in re.findall(r'<polyline class="values" points="([^"]*)"', svg):
        out.append([tuple(map(float, p.split(","))) for p in attr.split()])
    return out


def test_points_span_the_width_and_higher_values_sit_higher() -> None:
    svg = graph(pts(0.0, 1.0, 2.0), threshold=1.5, baseline=None, title="r")
    [line] = polylines(svg)
    xs, ys = [p[0] for p in line], [p[1] for p in line]
    assert xs == sorted(xs) and xs[0] < 10 and xs[-1] > 310
    assert ys[0] > ys[1] > ys[2]  # SVG y grows downwards
    assert ys[0] == HEIGHT - PAD_BOTTOM  # non-negative data sits on zero
    assert 'data-points="3"' in svg and svg.count("<circle") == 3
    assert svg.count('class="pt firing"') == 1


def test_missing_values_break_the_line() -> None:
    svg = graph(pts(0.1, 0.2, None, 0.3, 0.4), threshold=None, baseline=None, title="r")
    assert [len(seg) for seg in polylines(svg)] == [2, 2]
    assert svg.count("<circle") == 4


def test_threshold_and_baseline_are_drawn_inside_the_frame() -> None:
    svg = graph(pts(0.01, 0.02), threshold=0.5, baseline=0.2, title="r")
    t = float(re.search(r'<line class="threshold"[^>]* y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    b = float(re.search(r'<line class="baseline"[^>]* y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert PAD_TOP <= t < b < HEIGHT - PAD_BOTTOM
    assert "threshold 0.5" in svg and "baseline 0.2" in svg


def test_no_points_says_so_and_titles_are_escaped() -> None:
    svg = graph([], threshold=None, baseline=None, title='<b>"x"')
    assert "no evaluations yet" in svg and "<polyline" not in svg
    assert 'aria-label="&lt;b&gt;&quot;x&quot;"' in svg


def test_scale_keeps_negative_data_and_flat_series_visible() -> None:
    s = scale_for(pts(-2.0, 3.0), [])
    assert s.v0 < -2.0 and s.v1 > 3.0
    flat = scale_for(pts(5.0, 5.0), [])
    assert flat.v0 == 0.0 and flat.v1 > 5.0
