"""SIGHUP to a real `watchdog serve`: rules reloaded, a bad file refused and reported."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from examples.stack import WatchdogServer, start_watchdog
from tests.yaml_bombs import RECURSIVE_ALIAS, alias_bomb, deep_nesting

pytestmark = pytest.mark.e2e

RULE = "      - name: {}\n        source: http\n        url: http://127.0.0.1:9/health\n"
HEAD = "groups:\n  - name: g\n    interval: 1h\n    rules:\n"


def metric(server: WatchdogServer, name: str) -> float | None:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def wait_metric(server: WatchdogServer, name: str, value: float) -> None:
    deadline = time.monotonic() + 20
    while metric(server, name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value}: {server.log()[-2000:]}"
        time.sleep(0.1)


def test_sighup_reloads_and_a_bad_file_keeps_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(HEAD + RULE.format("one"))
    with start_watchdog(tmp_path / "wd", {"rules": str(rules)}) as server:
        wait_metric(server, "watchdog_rules", 1)
        rules.write_text(HEAD + RULE.format("one") + RULE.format("two"))
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_metric(server, "watchdog_rules", 2)
        assert metric(server, "watchdog_rules_last_reload_successful") == 1

        rules.write_text(HEAD + RULE.format("one") + "      - name: three\n        source: nope\n")
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_metric(server, "watchdog_rules_last_reload_successful", 0)
        assert metric(server, "watchdog_rules") == 2  # the old rules stay in force
        assert server.proc.poll() is None
        assert f"{rules}:9: unknown source 'nope'" in server.log()


def test_sighup_with_hostile_yaml_keeps_the_rules_and_says_where(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(HEAD + RULE.format("one"))
    with start_watchdog(tmp_path / "wd", {"rules": str(rules)}) as server:
        wait_metric(server, "watchdog_rules", 1)
        hostile = [
            (alias_bomb(), 6, "nodes once aliases are expanded"),
            (RECURSIVE_ALIAS, 3, "recursive alias *g"),
            (deep_nesting(5000), 1, "nested deeper than 64 levels"),
        ]
        for text, line, words in hostile:
            rules.write_text(HEAD + RULE.format("one") + RULE.format("two"))
            os.kill(server.proc.pid, signal.SIGHUP)
            wait_metric(server, "watchdog_rules_last_reload_successful", 1)
            wait_metric(server, "watchdog_rules", 2)
            rules.write_text(text)
            os.kill(server.proc.pid, signal.SIGHUP)
            wait_metric(server, "watchdog_rules_last_reload_successful", 0)
            assert metric(server, "watchdog_rules") == 2  # the old rules stay in force
            assert f"{rules}:{line}: YAML over limits: " in server.log()
            assert words in server.log()
        assert server.proc.poll() is None
        assert "Task exception was never retrieved" not in server.log()
        assert "Traceback" not in server.log()
