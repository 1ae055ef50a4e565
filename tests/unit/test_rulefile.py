"""Threshold grammar, durations, templating safety and rule-file errors (file:line)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from watchdog.foundation.durations import format_duration, parse_duration
from watchdog.foundation.errors import ConfigError, PermanentError
from watchdog.lifecycle.reload import same_rule
from watchdog.rulefile.load import check_report, load_rules
from watchdog.rulefile.template import promql_escape, render, url_escape
from watchdog.rulefile.threshold import parse_threshold

# --- threshold grammar ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "baseline", "expected"),
    [
        ("> 0.05", 0.06, None, True),
        ("> 0.05", 0.05, None, False),
        (">= 0.05", 0.05, None, True),
        ("< 1", 0.5, None, True),
        ("<= 1", 1.0, None, True),
        ("== 0", 0.0, None, True),
        ("!= 0", 0.0, None, False),
        ("> 5%", 0.051, None, True),
        ("> 1e3", 1001, None, True),
        (">2*baseline", 5.0, 2.0, True),
        (">= 2 * baseline", 4.0, 2.0, True),
        ("> baseline * 1.5", 2.9, 2.0, False),
        ("> baseline", 2.1, 2.0, True),
        ("> baseline + 0.5", 2.4, 2.0, False),
        ("> baseline - 0.5", 1.6, 2.0, True),
        ("> 2 and > 2 * baseline", 3.0, 1.0, True),
        ("> 2 and > 2 * baseline", 3.0, 2.0, False),
        ("> 2 * baseline", 3.0, None, None),
        ("> 0.05", math.inf, None, True),
        ("> 0.05", math.nan, None, False),
    ],
)
def test_threshold_grammar(
    text: str, value: float, baseline: float | None, expected: bool | None
) -> None:
    assert parse_threshold(text).breached(value, baseline) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0.05",
        "> ",
        "> abc",
        "bigger than 3",
        "> 2 **",
        "> __import__('os')",
        "> 1 or > 2",
        ">> 1",
        "> 2 * baseline * 3",
    ],
)
def test_threshold_grammar_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="threshold"):
        parse_threshold(text)


def test_threshold_describe_fills_in_baseline() -> None:
    t = parse_threshold("> 2 and >= 2 * baseline")
    assert t.describe(1.5) == "> 2 and >= 2 * baseline (= 3)"
    assert t.uses_baseline


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("0", 0),
        (90, 90),
        ("2.5", 2.5),
        ("1d", 86400),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "", "-5s", -3, "1h 30m", True, None])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(x) for x in (0, 0.25, 90, 3600, 5400)] == [
        "0s",
        "250ms",
        "1m30s",
        "1h",
        "1h30m",
    ]


# --- templating safety ------------------------------------------------------------------


def test_render_substitutes_and_escapes() -> None:
    q = 'rate(x{service="{{ service }}",team="{{labels.team}}"}[1m])'
    assert (
        render(q, {"service": "api", "labels.team": "core"})
        == 'rate(x{service="api",team="core"}[1m])'
    )


@pytest.mark.parametrize(
    "value",
    [
        'api"} or vector(1) or x{a="',
        "api\\",
        "a b",
        "",
        "x" * 200,
        "api\n",
        "-leading",
        "$(rm -rf /)",
        "a;b",
    ],
)
def test_render_refuses_unsafe_values(value: str) -> None:
    with pytest.raises(PermanentError, match="not allowed"):
        render('x{service="{{ service }}"}', {"service": value})


def test_render_missing_variable_is_permanent() -> None:
    with pytest.raises(PermanentError, match=r"labels\.team"):
        render("{{ labels.team }}", {"service": "x"})


def test_escapers() -> None:
    assert promql_escape('a"b\\c') == 'a\\"b\\\\c'
    assert url_escape("a/b c") == "a%2Fb%20c"
    assert render("http://h/{{ version }}", {"version": "v1/2"}, url_escape) == "http://h/v1%2F2"


# --- rule files -------------------------------------------------------------------------

GOOD = """\
groups:
  - name: api
    interval: 15s
    rules:
      - name: http-5xx-ratio
        source: prometheus
        query: sum(rate(x{service="{{ service }}"}[1m]))
        threshold: "> 0.05"
        action: rollback
      - name: health
        source: http
        url: http://127.0.0.1:1/health
        for: 5m
        interval: 5s
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_good_file_applies_group_interval(tmp_path: Path) -> None:
    rs = load_rules([write(tmp_path, "api.yml", GOOD)])
    assert [r.name for r in rs.rules] == ["http-5xx-ratio", "health"]
    assert rs.by_name["http-5xx-ratio"].effective_interval == 15
    assert rs.by_name["health"].effective_interval == 5
    assert rs.by_name["health"].for_ == 300
    assert rs.by_name["health"].origin.endswith("api.yml:10")


def test_shadow_rules_load_and_arming_one_is_a_changed_rule(tmp_path: Path) -> None:
    text = GOOD.replace("for: 5m", "for: 5m\n        shadow: true")
    shadow = load_rules([write(tmp_path, "a.yml", text)])
    armed = load_rules([write(tmp_path, "b.yml", GOOD)])
    assert shadow.by_name["health"].shadow and not armed.by_name["health"].shadow
    assert not shadow.by_name["http-5xx-ratio"].shadow
    # A reload keeps the state of unchanged rules only: arming one restarts its `for`.
    assert not same_rule(shadow.by_name["health"], armed.by_name["health"])
    assert same_rule(shadow.by_name["http-5xx-ratio"], armed.by_name["http-5xx-ratio"])


BAD_CASES = [
    (
        "unknown source",
        "      - name: a\n        source: graphite\n        query: x\n        threshold: '> 1'\n",
        5,
        "unknown source 'graphite'",
    ),
    (
        "bad duration",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: '> 1'\n        for: 5 minutes\n",
        8,
        "invalid duration",
    ),
    (
        "bad threshold",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: 'more than 1'\n",
        7,
        "invalid threshold",
    ),
    (
        "threshold without operator",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: 1\n",
        7,
        "needs an operator",
    ),
    (
        "unknown template variable",
        "      - name: a\n        source: prometheus\n        query: 'x{a=\"{{ team }}\"}'\n        threshold: '> 1'\n",
        6,
        "unknown template variable 'team'",
    ),
    (
        "unknown field",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: '> 1'\n        treshold: '> 2'\n",
        8,
        "unknown field 'treshold'",
    ),
    (
        "missing field",
        "      - name: a\n        source: prometheus\n        threshold: '> 1'\n",
        4,
        "missing required field 'query'",
    ),
    (
        "baseline missing",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: '> 2 * baseline'\n",
        4,
        "no 'baseline:'",
    ),
    (
        "bad policy",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: '> 1'\n        no_data: maybe\n",
        8,
        "no_data",
    ),
    (
        "bad shadow",
        "      - name: a\n        source: prometheus\n        query: x\n        threshold: '> 1'\n        shadow: maybe\n",
        8,
        "shadow",
    ),
]


@pytest.mark.parametrize(
    ("snippet", "line", "message"), [pytest.param(s, ln, m, id=i) for i, s, ln, m in BAD_CASES]
)
def test_problems_name_file_and_line(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    path = write(tmp_path, "bad.yml", "groups:\n  - name: g\n    rules:\n" + snippet)
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert any(p.startswith(f"{path}:{line}: ") and message in p for p in info.value.problems), (
        info.value.problems
    )


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yml", "groups:\n  - name: g\n    rules: [\n      {name: a\n")
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert info.value.problems[0].startswith(f"{path}:")
    assert "YAML syntax error" in info.value.problems[0]


def test_duplicate_names_across_files_and_every_problem_listed(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(tmp_path, "b.yml", GOOD.replace("for: 5m", "for: soon"))
    summaries, problems = check_report([tmp_path])
    assert summaries == [f"{tmp_path / 'a.yml'}: SUCCESS: 2 rules in 1 group (http, prometheus)"]
    assert (
        f"{tmp_path / 'b.yml'}:13: for: invalid duration 'soon': expected e.g. 15s, 5m, 1h30m, 250ms"
        in problems
    )
    dupes = [p for p in problems if "duplicate rule name" in p]
    assert len(dupes) == 2 and dupes[0].startswith(f"{tmp_path / 'b.yml'}:5: ")


def test_missing_path_and_empty_file(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yml", "")
    _, problems = check_report([tmp_path / "nope.yml", empty])
    assert problems == [  # sorted by file, then line
        f"{empty}:1: empty file: expected 'groups:'",
        f"{tmp_path / 'nope.yml'}:0: no such file or directory",
    ]


def test_duplicate_yaml_key_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dup.yml",
        GOOD.replace("action: rollback", "action: rollback\n        action: notify"),
    )
    with pytest.raises(ConfigError, match="duplicate key 'action'"):
        load_rules([path])


def test_a_fifo_in_the_rule_directory_is_skipped_and_named_one_refused(tmp_path: Path) -> None:
    """Issue 25 low: a FIFO in the rule directory wedged every later reload."""
    (tmp_path / "ok.yml").write_text(
        "groups:\n  - name: g\n    rules: [{name: r, source: http, url: 'http://h/'}]\n"
    )
    os.mkfifo(tmp_path / "wedge.yml")
    assert [r.name for r in load_rules([tmp_path]).rules] == ["r"]
    with pytest.raises(ConfigError, match=r"wedge\.yml:0: cannot read: not a regular file"):
        load_rules([tmp_path / "wedge.yml"])


def test_a_symlink_out_of_the_rule_directory_is_never_read_or_quoted(tmp_path: Path) -> None:
    """Issue 25 low: ``x.yml -> /etc/shadow`` made the reload's error quote its first
    line. A link out of the directory is named and refused, its content never read; a
    link that stays inside (a ConfigMap's ``..data/``) loads."""
    rules, outside = tmp_path / "rules", tmp_path / "elsewhere"
    (rules / "..2026_12_06").mkdir(parents=True)
    outside.mkdir()
    (rules / "..2026_12_06" / "ok.yml").write_text(
        "groups:\n  - name: g\n    rules: [{name: r, source: http, url: 'http://h/'}]\n"
    )
    (rules / "..data").symlink_to("..2026_12_06")
    (rules / "ok.yml").symlink_to("..data/ok.yml")
    assert [r.name for r in load_rules([rules]).rules] == ["r"]
    for name, secret in [("shadow", "hunter2-secret: 1\n"), ("tag", "!hunter2-secret x\n")]:
        (outside / name).write_text(secret)
        (rules / f"{name}.yml").symlink_to(outside / name)
    with pytest.raises(ConfigError) as raised:
        load_rules([rules])
    assert raised.value.problems == [
        f"{rules}/{name}.yml:0: not read: a symlink to a file outside {rules}/ "
        "(name that file itself in WATCHDOG_RULES to load it)"
        for name in ("shadow", "tag")
    ]
    # Named on its own, the operator chose it: read (and judged) as any rule file.
    with pytest.raises(ConfigError, match="unknown field 'hunter2-secret'"):
        load_rules([outside / "shadow"])
