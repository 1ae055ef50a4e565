"""The shipped ``alertmanager/`` files pass the real tools, and agree with rules/alerts.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.servers.alertmanager import shipped_config
from tests.servers.common import require_binary
from watchdog.rulefile.load import load_rules
from watchdog.rulefile.schema import AlertmanagerRule

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AM_DIR = REPO / "alertmanager"


def run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_amtool_check_config_passes() -> None:
    out = run([require_binary("amtool"), "check-config", str(AM_DIR / "alertmanager.yml")])
    assert "SUCCESS" in out


def test_promtool_check_rules_passes() -> None:
    out = run([require_binary("promtool"), "check", "rules", str(AM_DIR / "prometheus-rules.yml")])
    assert "SUCCESS" in out


def test_the_tools_do_reject_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yml"
    broken.write_text("groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: sum(\n")
    done = subprocess.run(
        [require_binary("promtool"), "check", "rules", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0


def test_watchdog_receiver_gets_rollback_alerts_with_resolved_and_a_credentials_file() -> None:
    config = shipped_config()
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert len(hooks) == 1
    hook = hooks[0]
    assert hook["url"].endswith("/api/v1/alertmanager") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["credentials_file"]
    route = config["route"]["routes"][0]
    assert route["receiver"] == "rollback-watchdog" and route["matchers"] == ['rollback = "true"']


def test_every_alertmanager_rule_names_an_alert_that_exists() -> None:
    data = yaml.safe_load((AM_DIR / "prometheus-rules.yml").read_text())
    alerts = {r["alert"]: r for g in data["groups"] for r in g["rules"]}
    for rule in load_rules([REPO / "rules" / "alerts.yml"]).rules:
        assert isinstance(rule, AlertmanagerRule)
        names = [rule.alertname] if rule.alertname else rule.match_re["alertname"].split("|")
        for name in names:
            assert name in alerts, name
            assert alerts[name]["labels"]["rollback"] == "true"  # routed to the watchdog
