"""Offline PromQL parsing: a rule whose query cannot parse is a `file:line:column` problem
before it ever runs (`watchdog check`, `serve`, reload and replay all load through it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from watchdog.foundation.errors import ConfigError
from watchdog.rulefile.load import check_report, load_rules
from watchdog.rulefile.promsyntax import SyntaxProblem, check_expressions, place, stand_ins

HAS_PROMTOOL = shutil.which("promtool") is not None

RULES = """\
groups:
  - name: g
    rules:
      - name: unbalanced
        source: prometheus
        query: sum(rate(http_requests_total{service="{{ service }}"}[1m])
        threshold: "> 0"
      - name: block
        source: prometheus
        query: |
          sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[1m]))
            / sum(rate(http_requests_total{service="{{ service }}"}[1m])) bad
        threshold: "> 5%"
      - name: quoted
        source: prometheus
        query: "rate(x)"
        threshold: "> 0"
      - name: templated-label-name
        source: prometheus
        query: 'up{ {{ service_label }}="{{ service }}"}'
        threshold: "< 1"
      - name: baseline
        source: prometheus
        query: up
        threshold: "< baseline"
        baseline:
          query: avg_over_time(up[1h]
      - name: judge
        source: judge
        errors: http_requests_total{status=~"5..",service="{{ service }}"}
        total: http_requests_total{service="{{ service }}"}
"""


def column_of(path: Path, line: int, text: str) -> int:
    return path.read_text().splitlines()[line - 1].index(text) + 1


@pytest.mark.skipif(not HAS_PROMTOOL, reason="positions come from promtool")
def test_every_bad_expression_is_named_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    summaries, problems = check_report([path])
    end_of_6 = len(path.read_text().splitlines()[5]) + 1
    assert summaries == []
    assert problems == [
        f"{path}:6:{end_of_6}: rule 'unbalanced': query is not valid PromQL: "
        "unclosed left parenthesis",
        f"{path}:12:{column_of(path, 12, 'bad')}: rule 'block': query is not valid PromQL: "
        'unexpected identifier "bad"',
        f"{path}:16:{column_of(path, 16, 'x)')}: rule 'quoted': query is not valid PromQL: "
        'expected type range vector in call to function "rate", got instant vector',
        f"{path}:27:{end_of(path, 27)}: rule 'baseline': baseline.query is not valid PromQL: "
        "unclosed left parenthesis",
    ]


def end_of(path: Path, line: int) -> int:
    return len(path.read_text().splitlines()[line - 1]) + 1


def test_load_refuses_the_file_so_serve_and_reload_never_run_it(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert len(info.value.problems) == 4
    assert all("is not valid PromQL" in p for p in info.value.problems)


def test_good_queries_templates_and_judge_selectors_parse(tmp_path: Path) -> None:
    good = "\n".join(
        line for line in RULES.split("      - name: templated-label-name")[1].splitlines()
    )
    path = tmp_path / "good.yml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - name: templated-label-name" + good)
    path.write_text(path.read_text().replace("avg_over_time(up[1h]", "avg_over_time(up[1h])"))
    assert len(load_rules([path])) == 3


def test_the_shipped_rules_and_examples_parse() -> None:
    repo = Path(__file__).resolve().parents[2]
    paths = [repo / "rules", repo / "examples/demo/rules.yml"]
    paths += [p for p in (repo / "rules").iterdir() if p.is_dir()]
    problems = [p for path in paths for p in check_report([path])[1]]
    assert problems == []


def test_templates_keep_their_length_so_columns_stay_true() -> None:
    expr = 'up{ {{ service_label }}="{{service}}"} bad'
    assert len(stand_ins(expr)) == len(expr)
    assert stand_ins(expr).index("bad") == expr.index("bad")


def test_a_templated_duration_stands_in_as_a_duration() -> None:
    exprs = [
        'rate(x{a="{{ service }}"}[{{ labels.window }}])',
        "x offset {{ labels.lag }}",
        "max_over_time(x[{{ labels.window }}:{{ labels.step }}])",
    ]
    assert check_expressions(exprs) == [None, None, None]


def test_without_promtool_the_parser_alone_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    found = check_expressions(["sum(rate(x[5m])", "up == 1", 'x{a=~"("}'])
    assert found[1] is None
    assert found[0] == SyntaxProblem(1, 1, "unclosed left parenthesis")
    assert found[2] is not None and "regex" in found[2].message


def test_deep_nesting_is_refused_before_the_parser_spends_seconds_on_it() -> None:
    found = check_expressions(["(" * 5000 + "up" + ")" * 5000])[0]
    assert found is not None and "nested 5000 deep" in found.message


def test_place_maps_block_and_quoted_scalars() -> None:
    lines = ["    query: |", "      sum(x)", "        bad"]
    assert place((1, 12, "|"), lines, SyntaxProblem(2, 9, "m")) == (3, 15)
    assert place((4, 16, '"'), [], SyntaxProblem(1, 6, "m")) == (4, 22)
    assert place((4, 16, None), [], SyntaxProblem(1, 6, "m")) == (4, 21)
