"""deploy/prometheus-alerts.yml, the alerts on the watchdog itself, under `promtool`:
the rules load, and their unit tests (deploy/prometheus-alerts.test.yml) pass — down,
no leader, blind source, outbox stuck, rollback failed (a service's first failure too),
reload refused."""

from __future__ import annotations

import subprocess

import yaml

from examples.stack import REPO, find_binary

DEPLOY = REPO / "deploy"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = find_binary("promtool")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, cwd=DEPLOY, timeout=120, check=False
    )


def test_the_alert_rules_load_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", "prometheus-alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "prometheus-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_exercised_by_a_unit_test() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus-alerts.test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert {
        "WatchdogDown",
        "WatchdogNoLeader",
        "WatchdogSourceBlind",
        "WatchdogOutboxStuck",
        "WatchdogRollbackFailed",
    } <= alerts
    assert firing == alerts
