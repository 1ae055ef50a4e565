"""`watchdog serve` as a real process, driven by the `watchdog` CLI as people use it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.stack import REPO, PromStack, start_watchdog
from tests.yaml_bombs import RECURSIVE_ALIAS, alias_bomb, deep_nesting
from watchdog.sources.kinds import KINDS

KNOWN = ", ".join(KINDS)  # every kind of the table, in its order

pytestmark = pytest.mark.e2e


def cli(
    *args: str, token: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    if token:
        env["WATCHDOG_API_TOKEN"] = token
    if url:
        env["WATCHDOG_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )


def test_check_the_shipped_rule_pack_and_the_demo_rules() -> None:
    result = cli("check", "rules/", "examples/demo/rules.yml")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shipped = sorted(p.name for p in (REPO / "rules").glob("*.yml"))
    assert len(lines) == len(shipped) + 2 and all(": SUCCESS: " in line for line in lines[:-1])
    files = len(shipped) + 1
    assert lines[-1].startswith("SUCCESS: ") and lines[-1].endswith(
        f" in {files} files, no problems"
    )


def test_check_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: g\n    rules:\n"
        "      - name: a\n        source: nope\n"
        "      - name: b\n        source: prometheus\n        query: up\n        threshold: '>'\n"
    )
    result = cli("check", str(bad), str(tmp_path / "missing.yml"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{bad}:5: unknown source 'nope' (expected one of: {KNOWN})",
        f"{bad}:9: threshold: invalid threshold '>': expected OP NUMBER, OP N * baseline "
        "or OP baseline [* N] [+ N], with OP one of > >= < <= == !=",
        f"{tmp_path / 'missing.yml'}:0: no such file or directory",
    ]
    # The verdict comes after the problems, counted in good English.
    assert result.stdout.splitlines() == ["FAILED: 3 problems; fix them and run check again"]


def test_check_refuses_hostile_yaml_quickly_with_file_and_line(tmp_path: Path) -> None:
    files = {
        "bomb.yml": (
            alias_bomb(),
            6,
            "more than 100,000 nodes once aliases are expanded",
        ),
        "recursive.yml": (RECURSIVE_ALIAS, 3, "recursive alias *g (it refers to itself)"),
        "deep.yml": (deep_nesting(5000), 1, "nested deeper than 64 levels"),
    }
    for name, (text, _, _) in files.items():
        (tmp_path / name).write_text(text)
    started = time.monotonic()
    result = cli("check", str(tmp_path))
    assert time.monotonic() - started < 20  # a 300-byte bomb hung `check` before
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"{tmp_path / name}:{line}: YAML over limits: {words}"
        for name, (_, line, words) in sorted(files.items())
    ]


def test_serve_refuses_a_hostile_settings_file_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text(alias_bomb().replace("groups:", "plans:"))
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env={**os.environ, "WATCHDOG_CONFIG": str(config)},
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{config}:6: YAML over limits: more than 100,000 nodes" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_bad_rules_with_file_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - name: a\n        source: nope\n")
    env_rules = {"WATCHDOG_RULES": str(bad), "WATCHDOG_STORE_URL": f"sqlite:///{tmp_path}/x.db"}
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env={**os.environ, **env_rules},
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{bad}:5: unknown source 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def serve_once(tmp_path: Path, rules: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``watchdog serve`` with these rules and no other WATCHDOG_ setting: it must exit."""
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    clean |= {"WATCHDOG_RULES": str(path), "WATCHDOG_STORE_URL": f"sqlite:///{tmp_path}/x.db"}
    return subprocess.run(
        [sys.executable, "-m", "watchdog", "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env=clean | env,
        timeout=60,
    )


ROLLBACK_RULE = """\
groups:
  - name: g
    rules:
      - name: ratio
        source: prometheus
        query: |
          sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[1m]))
            / sum(rate(http_requests_total{service="{{ service }}"}[1m]))
        threshold: "> 5%"
        action: rollback
"""


def test_serve_refuses_a_rollback_rule_without_a_plan_naming_file_and_line(
    tmp_path: Path,
) -> None:
    result = serve_once(tmp_path, ROLLBACK_RULE)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "watchdog: cannot start, fix these first:",
        f"  {tmp_path / 'rules.yml'}:4: rule 'ratio' has action: rollback, but no rollback "
        "plan is set, so its first firing would fail: add a plan under 'plans:' in the "
        "WATCHDOG_CONFIG file and name it in 'default_plan:' (see docs/deploy.md)",
    ]
    plans = json.dumps({"a": {"steps": [{"name": "s", "kind": "command", "argv": ["true"]}]}})
    result = serve_once(tmp_path, ROLLBACK_RULE, WATCHDOG_PLANS=plans)
    assert result.returncode == 2 and (
        "set default_plan (WATCHDOG_DEFAULT_PLAN) to one of the plans: a" in result.stderr
    )


def test_serve_refuses_promql_that_does_not_parse_with_file_line_and_column(
    tmp_path: Path,
) -> None:
    broken = ROLLBACK_RULE.replace("[1m]))\n        threshold", "[1m])\n        threshold")
    result = serve_once(tmp_path, broken.replace("action: rollback", "action: notify"))
    assert result.returncode == 2, result.stderr
    line = broken.splitlines()[7]
    assert result.stderr.splitlines() == [
        "watchdog: cannot start, fix these first:",
        f"  {tmp_path / 'rules.yml'}:8:{len(line) + 1}: rule 'ratio': query is not valid "
        "PromQL: unclosed left parenthesis",
    ]
    assert "Traceback" not in result.stderr


def test_serve_exits_2_within_5s_when_the_port_is_taken(tmp_path: Path) -> None:
    rules = tmp_path / "r.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - name: a\n        source: prometheus\n"
        "        query: up\n        threshold: '> 1'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env |= {"WATCHDOG_RULES": str(rules), "WATCHDOG_STORE_URL": f"sqlite:///{tmp_path}/x.db"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "serve", "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        lines = []
        try:
            # Timed from the failure, not from the interpreter's start (slow on a busy
            # machine). A supervisor restarts a process that exits; one that hangs stays
            # broken.
            for line in proc.stderr:
                lines.append(line)
                if "cannot start" in line:
                    break
            failed = time.monotonic()
            code = proc.wait(timeout=30)
            took = time.monotonic() - failed
            lines += proc.stderr.readlines()
        finally:
            proc.kill()
            proc.wait()
    err = "".join(lines)
    assert code == 2, err
    assert took < 5, f"took {took:.1f}s to exit after failing"
    assert "cannot start" in err and "address already in use" in err
    assert "Traceback" not in err


def test_serve_refuses_a_rule_naming_an_unconfigured_target(tmp_path: Path) -> None:
    env = {
        "WATCHDOG_RULES": str(REPO / "rules/database.yml"),
        "WATCHDOG_STORE_URL": f"sqlite:///{tmp_path}/x.db",
        "WATCHDOG_POSTGRES_TARGETS": '{"reporting": "postgresql://wd:hunter2-secret-0123@db/r"}',
    }
    result = subprocess.run(
        [sys.executable, "-m", "watchdog", "serve", "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"{REPO / 'rules/database.yml'}:" in result.stderr
        and "rule 'db-connection-failures' names postgres target 'app', which is not configured "
        "(set WATCHDOG_POSTGRES_TARGETS; configured: reporting)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr and "hunter2-secret-0123" not in result.stderr


def test_deploy_commands_against_a_running_service(prom_stack: PromStack, tmp_path: Path) -> None:
    settings = {
        "config": str(REPO / "examples/demo/watchdog.yml"),
        "rules": str(REPO / "examples/demo/rules.yml"),
        "prometheus_url": prom_stack.prom_url,
    }
    with start_watchdog(tmp_path / "wd", settings) as wd:
        started = cli(
            "deploy", "start", "--service", "demo", "--version", "v7", "--previous-version", "v6",
            "--environment", "ci", "--label", f"port={prom_stack.demo.port}", "--json",
            token=wd.token, url=wd.url,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        window = json.loads(started.stdout)
        assert window["phase"] == "watching" and window["version"] == "v7"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            detail = wd.window(window["id"])
            if all(r["last_value"] is not None for r in detail["rules"]):
                break
            time.sleep(0.3)
        status = cli("deploy", "status", window["id"], token=wd.token, url=wd.url)
        assert status.returncode == 0, status.stderr
        assert "http-5xx-ratio" in status.stdout and "window_opened" in status.stdout
        held = cli(
            "deploy", "hold", window["id"], "--reason", "looking", token=wd.token, url=wd.url
        )
        assert held.returncode == 0 and "held" in held.stdout
        listed = cli("deploy", "list", "--phase", "held", "--json", token=wd.token, url=wd.url)
        assert [w["id"] for w in json.loads(listed.stdout)["windows"]] == [window["id"]]
        aborted = cli("deploy", "abort", window["id"], token=wd.token, url=wd.url)
        assert aborted.returncode == 0
        again = cli("deploy", "rollback", window["id"], token=wd.token, url=wd.url)
        assert again.returncode == 1 and "aborted" in again.stderr
        wrong = cli("deploy", "status", window["id"], token="wrong-token-123", url=wd.url)
        assert wrong.returncode == 1
        assert wd.token not in wd.log()  # the token never reaches the logs
    mine = [
        c
        for c in prom_stack.demo.rollback_calls()
        if str(c["headers"].get("Idempotency-Key", "")).startswith(window["id"])
    ]
    assert mine == []  # held, then aborted: never rolled back


def test_check_fails_a_promql_typo_offline_with_file_line_and_column(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(ROLLBACK_RULE.replace("sum(rate(", "sum(rat(", 1))
    result = cli("check", str(rules))
    assert result.returncode == 1
    column = ROLLBACK_RULE.splitlines()[6].index("rate(") + 1
    assert result.stderr.splitlines() == [
        f"{rules}:7:{column}: rule 'ratio': query is not valid PromQL: "
        'unknown function with name "rat"'
    ]
    assert result.stdout.splitlines()[-1] == "FAILED: 1 problem; fix them and run check again"


def test_serve_names_the_settings_file_line_and_key_of_a_typo(tmp_path: Path) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text("window: 30m\npromethues_url: http://prometheus:9090\ntick: 1 second\n")
    result = serve_once(
        tmp_path, ROLLBACK_RULE, WATCHDOG_CONFIG=str(config), WATCHDOG_PROMETHEUS_UR="x"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "watchdog: warning: WATCHDOG_PROMETHEUS_UR is not a setting "
        "(did you mean WATCHDOG_PROMETHEUS_URL?): it is ignored",
        "watchdog: invalid settings:",
        f"  {config}:2: promethues_url: unknown setting 'promethues_url' "
        "(did you mean 'prometheus_url'?)",
        f"  {config}:3: tick: invalid duration '1 second': use 1s",
    ]
