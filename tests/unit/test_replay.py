"""Replay over an in-memory history: same for/no_data semantics as live, chunking, CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watchdog.cli import main as cli
from watchdog.cli.replay import ReplayError, parse_time, render_replay
from watchdog.evaluation.replay import Replayer, grid
from watchdog.foundation.errors import TransientError
from watchdog.foundation.model import Deployment
from watchdog.rulefile.load import RuleSet
from watchdog.rulefile.schema import HttpRule, PrometheusRule
from watchdog.sources.prometheus import RangeSeries

T0 = 1_700_000_000.0
DEPLOY = Deployment("checkout", "prod", "v2", "v1")


class History:
    """query -> function of time giving the value (None: no series at that time)."""

    def __init__(self, **series: Any) -> None:
        self.series = series
        self.calls: list[tuple[str, float, float, float]] = []
        self.fail: set[str] = set()

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        self.calls.append((query, start, end, step))
        if query in self.fail:
            raise TransientError("Prometheus answered HTTP 503")
        fn = self.series[query]
        points = [(t, v) for t in grid(start, end, step) if (v := fn(t)) is not None]
        return [({"job": "api"}, points)] if points else []


def rule(name: str = "ratio", query: str = "q", **kw: Any) -> PrometheusRule:
    fields = {"threshold": "> 0.05", "interval": 1.0, "action": "rollback", **kw}
    return PrometheusRule(name=name, source="prometheus", query=query, **fields)


async def run(history: History, *rules: Any, end: float = 30, **kw: Any) -> Any:
    return await Replayer(history, **kw).run(RuleSet.of(rules), DEPLOY, T0, T0 + end)


def step_fault(at: float, high: float = 0.3) -> Any:
    return lambda t: high if t >= T0 + at else 0.0


async def test_for_is_honoured_and_rollback_ends_the_replay() -> None:
    history = History(q=step_fault(10))
    result = await run(history, rule(**{"for": "3s"}))
    kinds = [(e.kind, e.at - T0) for e in result.events]
    assert kinds == [("pending", 10), ("firing", 13), ("action", 13)]
    assert result.rollback_at == T0 + 13 and result.rollback_rule == "ratio"
    assert result.evaluations == 14  # nothing is evaluated after the rollback starts
    assert history.calls == [("q", T0, T0 + 30, 1.0)]


async def test_a_shadow_rule_says_it_would_roll_back_and_the_replay_goes_on() -> None:
    history = History(q=step_fault(10), other=step_fault(20))
    shadow = rule(shadow=True)
    armed = rule("other", "other")
    result = await run(history, shadow, armed)
    actions = [(e.rule, e.at - T0, e.message) for e in result.events if e.kind == "action"]
    assert actions == [
        ("ratio", 10, "shadow: would roll back; nothing acts"),
        ("other", 20, "rollback would start; rules stop"),
    ]
    assert result.rollback_at == T0 + 20 and result.rollback_rule == "other"


async def test_healthy_history_never_fires() -> None:
    result = await run(History(q=lambda t: 0.01), rule())
    assert result.events == [] and result.rollback_at is None
    assert result.evaluations == 31


async def test_a_gap_in_the_data_resets_pending_and_is_inconclusive() -> None:
    def gappy(t: float) -> float | None:
        return None if T0 + 12 <= t < T0 + 14 else (0.3 if t >= T0 + 10 else 0.0)

    result = await run(History(q=gappy), rule(**{"for": "3s"}))
    kinds = [(e.kind, e.at - T0) for e in result.events]
    assert kinds[:3] == [("pending", 10), ("inconclusive", 12), ("pending", 14)]
    assert result.rollback_at == T0 + 17


async def test_no_data_breach_fires_and_errors_stay_inconclusive() -> None:
    history = History(q=lambda t: None, e=lambda t: 1.0)
    history.fail.add("e")
    result = await run(
        history,
        rule(no_data="breach", action="notify"),
        rule("errs", query="e", action="notify"),
        end=5,
    )
    assert result.first("ratio", "firing") is not None
    assert result.first("errs", "inconclusive") is not None
    assert result.first("errs", "firing") is None
    reason = result.first("errs", "inconclusive")
    assert reason is not None and "503" in reason.message


async def test_notify_fires_at_each_transition_and_http_rules_are_skipped() -> None:
    flapping = History(q=lambda t: 0.3 if int(t - T0) % 10 >= 5 else 0.0)
    probe = HttpRule(name="health", source="http", url="http://x/health")
    result = await run(flapping, rule(action="notify"), probe, end=25)
    actions = [e.at - T0 for e in result.events if e.kind == "action"]
    assert actions == [5, 15, 25]
    assert result.skipped == {"health": "http rules have no history to replay"}
    assert result.replayed == ["ratio"]


async def test_chunked_queries_give_the_same_answer_and_report_progress() -> None:
    seen: list[tuple[int, int]] = []
    history = History(q=step_fault(17))
    result = await Replayer(history, chunk_steps=7).run(
        RuleSet.of([rule()]), DEPLOY, T0, T0 + 30, lambda d, t: seen.append((d, t))
    )
    assert result.rollback_at == T0 + 17
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert [c[1] - T0 for c in history.calls] == [0, 7, 14, 21, 28]


async def test_baseline_is_read_before_the_range_and_templates_are_filled() -> None:
    history = History(**{'base{s="checkout"}': lambda t: 0.1 if t < T0 else 0.5})
    r = rule(
        query='base{s="{{ service }}"}',
        threshold="> 2 * baseline",
        baseline={"offset": "1h"},
    )
    result = await run(history, r, end=3)
    assert history.calls[-1][1] == T0 - 3600  # the baseline instant
    firing = result.first("ratio", "firing")
    assert firing is not None and firing.at == T0 and "(= 0.2)" in firing.message


def test_parse_time_forms() -> None:
    now = T0
    assert parse_time("now", now=now) == T0
    assert parse_time("-2h", now=now) == T0 - 7200
    assert parse_time("+30m", now=now, relative_to=T0 - 7200) == T0 - 5400
    assert parse_time(str(T0), now=0) == T0
    assert parse_time("2023-11-14T22:13:20Z", now=0) == T0
    assert parse_time("2023-11-14T22:13:20", now=0) == T0  # no zone means UTC
    with pytest.raises(ReplayError, match="invalid time"):
        parse_time("yesterday", now=now)
    with pytest.raises(ReplayError, match="invalid duration"):
        parse_time("-2x", now=now)


async def test_render_names_the_verdict() -> None:
    result = await run(History(q=step_fault(10)), rule())
    text = render_replay(result)
    assert "verdict: would have rolled back at 2023-11-14 22:13:30 (10s in), rule ratio" in text
    assert "ACTION" in text and "rollback would start" in text


def test_cli_refuses_bad_ranges_and_broken_rule_files(tmp_path: Path, capsys: Any) -> None:
    good = tmp_path / "ok.yml"
    good.write_text(
        "groups:\n  - name: g\n    rules:\n      - {name: r, source: prometheus, "
        "query: up, threshold: '> 1'}\n"
    )
    assert cli.main(["replay", str(good), "--service", "s", "--from", "now", "--to", "now"]) == 2
    assert "--to must be after --from" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - {name: r, source: nope}\n")
    assert cli.main(["replay", str(bad), "--service", "s", "--from=-1h"]) == 2
    assert f"{bad}:4" in capsys.readouterr().err
    args = ["replay", str(good), "--service", "s", "--from=-9999d"]
    assert cli.main(args) == 2
    assert "range too long" in capsys.readouterr().err


async def test_evaluations_without_data_are_counted_and_a_rule_that_saw_none_is_no_pass() -> None:
    history = History(q=lambda t: None if t < T0 + 10 else 0.0, nothing=lambda t: None)
    history.fail.add("e")
    result = await run(
        history,
        rule(action="notify"),
        rule("silent", query="nothing", action="notify", no_data="ok"),
        rule("errs", query="e", action="notify"),
        end=19,
    )
    assert result.per_rule == {"ratio": 20, "silent": 20, "errs": 20}
    assert result.without_data == {"ratio": 10, "silent": 20, "errs": 20}
    assert result.saw_no_data == ["silent", "errs"]
    out = result.as_dict()
    assert out["evaluations_without_data"] == 50
    assert out["saw_no_data"] == {
        "silent": "empty result",
        "errs": "Prometheus answered HTTP 503",
    }
    text = render_replay(result)
    assert "50 of 60 evaluations without data" in text
    assert "no data at all: silent (empty result)" in text
    assert "no data at all: errs (Prometheus answered HTTP 503)" in text
    assert "verdict: not a pass: a rule saw no data" in text
    assert "no rollback over this range" not in text


# --- final verdicts (issue 20 item 7) ---------------------------------------------------


async def test_each_rule_ends_with_its_final_verdict() -> None:
    history = History(
        fine=lambda t: 0.01,
        sparse=lambda t: 0.01 if t < T0 + 5 else None,  # data for 5 of 30 evaluations
        notify=step_fault(10),
    )
    result = await run(
        history,
        rule("fine", "fine"),
        rule("sparse", "sparse"),
        rule("notify", "notify", action="notify"),
        end=29,
    )
    finals = {name: f.verdict for name, f in result.finals.items()}
    assert finals == {"fine": "ok", "sparse": "no_data", "notify": "fired"}
    assert result.unjudged == ["sparse"]
    sparse = result.finals["sparse"]
    assert (sparse.evaluations, sparse.without_data) == (30, 25)
    assert sparse.text() == "no data for 25s of 30s"
    assert result.finals["notify"].fired_at == T0 + 10
    assert result.finals["notify"].text(lambda t: f"+{t - T0:.0f}s").startswith("fired at +10s")
    text = render_replay(result)
    assert "rule sparse: no data for 25s of 30s" in text
    assert text.splitlines()[-1] == "verdict: not a pass: could not judge most of the range: sparse"
    assert result.as_dict()["rules"]["sparse"]["judged"] is False


async def test_data_for_most_of_the_range_is_judged() -> None:
    history = History(q=lambda t: 0.01 if t >= T0 + 10 else None)  # 20 of 30 with data
    result = await run(history, rule(), end=29)
    assert result.finals["ratio"].verdict == "ok" and result.unjudged == []
    assert result.finals["ratio"].text() == "ok; no data for 10s of 30s"


async def test_a_baseline_that_never_came_leaves_the_rule_inconclusive() -> None:
    history = History(q=lambda t: 0.01)
    baseline = {"offset": 60.0}  # the baseline query answers nothing: no limit to judge
    history.series["q"] = lambda t: 0.01 if t >= T0 else None
    result = await run(history, rule(threshold="> 2 * baseline", baseline=baseline), end=9)
    assert result.finals["ratio"].verdict == "inconclusive"
    assert result.unjudged == ["ratio"]


def test_exit_codes_tell_rollback_no_data_and_unjudged_apart() -> None:
    from watchdog.cli.replay import exit_code
    from watchdog.evaluation.replay import ReplayResult
    from watchdog.evaluation.replayfinal import Final

    result = ReplayResult(T0, T0 + 60)
    assert exit_code(result) == 0
    result.finals = {"a": Final("a", "inconclusive", 10, 0, 15.0, seen=40, needed=4600)}
    assert exit_code(result) == 9
    assert result.finals["a"].text() == "inconclusive: saw 40 requests, needs ~4,600 to tell"
    result.per_rule, result.without_data = {"a": 3}, {"a": 3}
    assert exit_code(result) == 1
    result.rollback_at = T0 + 30
    assert exit_code(result) == 3


async def test_a_ratio_of_no_requests_is_no_data_not_a_verdict() -> None:
    history = History(q=lambda t: float("nan") if t >= T0 + 5 else 0.01)
    result = await run(history, rule(), end=29)
    assert result.finals["ratio"].verdict == "no_data"
    assert result.finals["ratio"].without_data == 25
