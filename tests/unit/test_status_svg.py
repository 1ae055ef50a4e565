"""The inline SVG graph: where points, gaps, limit, baseline, axes and markers land."""

from __future__ import annotations

import re

from watchdog.foundation.model import Verdict
from watchdog.store.base import RulePoint
from watchdog.web.status_axes import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, value_range
from watchdog.web.status_band import band_graph
from watchdog.web.status_story import Marker
from watchdog.web.status_svg import Frame, graph

T0 = 1_800_000_000.0  # 08:00:00 UTC
FRAME = Frame(T0 + 100, T0 + 104)


def pts(*values: float | None) -> list[RulePoint]:
    verdicts = {None: Verdict.INCONCLUSIVE}
    return [
        RulePoint.of(
            T0 + 100 + i, v, verdicts.get(v, Verdict.FIRING if (v or 0) > 1 else Verdict.OK)
        )
        for i, v in enumerate(values)
    ]


def draw(points: list[RulePoint], **kw: object) -> str:
    frame = kw.pop("frame", FRAME)
    args: dict[str, object] = {"threshold": None, "baseline": None, "title": "r", "unit": "count"}
    args.update(kw)
    return graph(points, frame=frame, **args)  # type: ignore[arg-type]


def polylines(svg: str) -> list[list[tuple[float, float]]]:
    out = []
    for attr in re.findall(r'<polyline class="values" points="([^"]*)"', svg):
        out.append([tuple(map(float, p.split(","))) for p in attr.split()])
    return out


def test_points_span_the_plot_and_higher_values_sit_higher() -> None:
    svg = draw(pts(0.0, 1.0, 2.0, 2.0, 2.0), threshold=1.5)
    [line] = polylines(svg)
    xs, ys = [p[0] for p in line], [p[1] for p in line]
    assert xs == sorted(xs) and xs[0] == LEFT and xs[-1] == WIDTH - RIGHT
    assert ys[0] > ys[1] > ys[2]  # SVG y grows downwards
    assert ys[0] == HEIGHT - BOTTOM  # non-negative data sits on zero
    assert 'data-points="5"' in svg and svg.count("<circle") == 5
    assert svg.count('class="pt firing"') == 3


def test_missing_values_break_the_line_and_show_as_no_data() -> None:
    svg = draw(pts(0.1, 0.2, None, 0.3, 0.4))
    assert [len(seg) for seg in polylines(svg)] == [2, 2]
    assert svg.count("<circle") == 4
    assert svg.count('<rect class="nodata"') == 1 and ">no data</text>" in svg


def test_limit_and_baseline_are_drawn_inside_the_plot_in_the_rules_unit() -> None:
    svg = draw(pts(0.01, 0.02), threshold=0.05, baseline=0.02, unit="ratio")
    t = float(re.search(r'<line class="threshold"[^>]* y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    b = float(re.search(r'<line class="baseline"[^>]* y1="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert TOP <= t < b < HEIGHT - BOTTOM
    assert ">limit 5 %</text>" in svg and ">baseline 2 %</text>" in svg
    assert re.findall(r'text-anchor="end">(\d+ %)</text>', svg)[:2] == ["0 %", "2 %"]


def test_the_time_axis_is_wall_clock_utc_and_markers_are_labelled() -> None:
    frame = Frame(T0, T0 + 600, [Marker(T0, "deploy", "deploy"), Marker(T0 + 300, "rollback", "rollback"),
                                 Marker(T0 + 301, "rolled back", "rolled-back")])  # fmt: skip
    svg = draw(pts(0.1, 0.2), frame=frame)
    ticks = re.findall(r'text-anchor="middle">(\d\d:\d\d(?::\d\d)?)</text>', svg)
    assert ticks[:3] == ["08:00", "08:02", "08:04"] and ">time (UTC)</text>" in svg
    assert svg.count('<g class="marker') == 3
    rows = re.findall(
        r'<g class="marker [^"]+"><title>[^<]*</title><line[^>]*/><text x="[\d.]+" y="(\d+)"', svg
    )
    assert len(set(rows[1:])) == 2  # two markers a second apart: labels on two rows


def test_no_points_says_so_and_titles_are_escaped() -> None:
    svg = draw([], title='<b>"x"')
    assert "no evaluations yet" in svg and "<polyline" not in svg
    assert 'aria-label="&lt;b&gt;&quot;x&quot;"' in svg


def test_value_range_keeps_negative_data_and_flat_series_visible() -> None:
    lo, hi = value_range([-2.0, 3.0])
    assert lo <= -2.0 and hi > 3.0
    assert value_range([5.0, 5.0]) == (0.0, 6.0)
    assert value_range([]) == (0.0, 1.25)


def test_a_judge_band_turns_red_where_the_verdict_fired() -> None:
    def point(i: int, errors: float, verdict: Verdict) -> RulePoint:
        ev = {"errors": errors, "requests": 1000.0 * i, "baseline_errors": 100.0,
              "baseline_requests": 10_000.0, "limit": 0.015}  # fmt: skip
        return RulePoint(T0 + 15 * i, errors / (1000 * i), verdict, ev)

    points = [point(i, 10.0 * i, Verdict.OK) for i in range(1, 5)]
    points += [point(i, 40.0 * i, Verdict.FIRING) for i in range(5, 7)]
    svg = band_graph(points, title="judge", frame=Frame(T0, T0 + 100))
    assert svg.count('<polygon class="band"') == 3 and svg.count('class="band firing"') == 2
    assert ">fires above +0.5 %</text>" in svg and "new - baseline, 95 % interval" in svg
    assert band_graph(pts(0.1, 0.2), title="x", frame=FRAME) == ""  # no counts: plain graph
