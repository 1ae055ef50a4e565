"""``deploy status --watch``: redraws until the window ends, stops on Ctrl-C; sparklines."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.unit.test_cli import Live, live, run, start  # noqa: F401 (fixture)
from watchdog.cli.render import render_rules, sparkline
from watchdog.cli.watch import CLEAR, watch_status


def detail(phase: str, values: list[float | None]) -> dict[str, Any]:
    samples = [{"at": "2026-01-01T00:00:00Z", "value": v, "verdict": "ok"} for v in values]
    rule = {"name": "ratio", "verdict": "ok", "threshold": "> 0.05", "samples": samples}
    return {"window": {"id": "w1", "phase": phase}, "rules": [rule], "events": []}


def test_sparkline_scales_and_shows_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0.1, None, 0.1]) == "▁ ▁"
    assert sparkline(list(range(50))) == sparkline(list(range(30, 50)))  # the last 20
    assert sparkline([]) == "-"
    assert sparkline([float("nan")]) == " "


def test_rule_table_carries_the_sparkline() -> None:
    table = render_rules(detail("watching", [0.0, 0.5, 1.0])["rules"])
    assert table.splitlines()[1].endswith("▁▅█")


def test_watch_redraws_until_terminal() -> None:
    frames = [
        detail("watching", [0.0]),
        detail("watching", [0.0, 0.2]),
        detail("rolled_back", [0.0, 0.2, 0.4]),
    ]
    sleeps: list[float] = []
    out = io.StringIO()
    code = watch_status(
        lambda: frames.pop(0), interval=1.5, out=out, sleep=sleeps.append, clock=lambda: "T"
    )
    assert code == 0 and frames == [] and sleeps == [1.5, 1.5]
    text = out.getvalue()
    assert text.count(CLEAR) == 3
    last = text.split(CLEAR)[-1]
    assert "phase: rolled_back" in last and "▁▅█" in last and "refreshed T every 1.5s" in last


def test_watch_stops_quietly_on_ctrl_c() -> None:
    calls = 0

    def fetch() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return detail("watching", [])

    assert watch_status(fetch, interval=1, out=io.StringIO(), sleep=lambda _: None) == 0
    assert calls == 2


def test_watch_json_prints_one_line_per_refresh() -> None:
    frames = [detail("held", [1.0]), detail("passed", [1.0])]
    out = io.StringIO()
    watch_status(lambda: frames.pop(0), interval=1, out=out, as_json=True, sleep=lambda _: None)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["window"]["phase"] for line in lines] == ["held", "passed"]
    assert CLEAR not in out.getvalue()


def test_cli_watch_on_a_closed_window_draws_once(
    live: Live,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    window_id = start(capsys)
    assert run(capsys, "deploy", "rollback", window_id)[0] == 0
    code, out, err = run(capsys, "deploy", "status", window_id, "--watch", "--interval", "0.1")
    assert code == 0, err
    assert out.count(CLEAR) == 1 and "phase: rolled_back" in out and "RECENT" in out
    code, _, err = run(capsys, "deploy", "status", window_id, "--watch", "--interval", "0")
    assert code == 2 and "expected seconds above 0" in err


def test_the_rule_table_shows_for_progress_and_values_in_the_rules_unit() -> None:
    pending = {
        "name": "http-5xx-ratio",
        "verdict": "pending",
        "unit": "ratio",
        "threshold": "> 5%",
        "for_seconds": 60.0,
        "pending_since": "2026-01-01T09:37:26Z",
        "last_eval_at": "2026-01-01T09:37:46Z",
        "last_value": 0.2924,
        "samples": [],
    }
    latency = {
        "name": "p95-latency",
        "verdict": "ok",
        "unit": "seconds",
        "threshold": "> 0.5",
        "for_seconds": 120.0,
        "last_value": 0.4512,
        "samples": [],
    }
    old_server = {"name": "queue", "verdict": "ok", "threshold": "> 100", "last_value": 12.0}
    _, first, second, third = render_rules([pending, latency, old_server]).splitlines()
    assert first.split("  ")[0] == "http-5xx-ratio"
    assert "29.2 %" in first and "20s of 1m" in first
    assert "451 ms" in second and "2m" in second and " of " not in second
    assert " 12 " in third  # no unit from the API: a plain number, as before
