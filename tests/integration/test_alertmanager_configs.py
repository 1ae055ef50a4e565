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


def _promtool_test(
    tmp_path: Path, tests: list[dict[str, object]]
) -> subprocess.CompletedProcess[str]:
    spec = {
        "rule_files": [str(AM_DIR / "prometheus-rules.yml")],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _latency_test(bucket: str) -> dict[str, object]:
    """Every request of service api in (2.5 s, 3 s]: p95 = 2.975 s, as the instrumentator's
    fine-grained histogram has it; ``bucket`` is the histogram the series are named for."""
    series = [
        {"series": f'{bucket}{{service="api",le="{le}"}}', "values": values}
        for le, values in (("1", "0x10"), ("2.5", "0x10"), ("3", "0+60x10"), ("+Inf", "0+60x10"))
    ]
    alert = {
        "exp_labels": {"service": "api", "severity": "critical", "rollback": "true"},
        "exp_annotations": {"summary": "api: p95 latency 2.975s"},
    }
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "APILatencyP95High", "exp_alerts": [alert]}
        ],
    }


def test_latency_alert_fires_on_the_instrumentators_fine_grained_histogram(tmp_path: Path) -> None:
    done = _promtool_test(tmp_path, [_latency_test("http_request_duration_highr_seconds_bucket")])
    assert done.returncode == 0, done.stdout + done.stderr
    # The coarse histogram (buckets 0.1, 0.5, 1) is not what the alert reads: no alert.
    done = _promtool_test(tmp_path, [_latency_test("http_request_duration_seconds_bucket")])
    assert done.returncode != 0 and "APILatencyP95High" in done.stdout + done.stderr


def test_celery_alert_reads_flowers_events(tmp_path: Path) -> None:
    events = 'flower_events_total{{service="celery",type="{}",task="t",worker="celery@h"}}'
    test = {
        "interval": "1m",
        "input_series": [
            {"series": events.format("task-failed"), "values": "0+30x10"},
            {"series": events.format("task-succeeded"), "values": "0+60x10"},
            {"series": events.format("task-received"), "values": "0+90x10"},  # not a result
        ],
        "alert_rule_test": [
            {
                "eval_time": "10m",
                "alertname": "CeleryTaskFailureRatioHigh",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "service": "celery",
                            "severity": "critical",
                            "rollback": "true",
                        },
                        "exp_annotations": {"summary": "celery: 33.33% of Celery tasks fail"},
                    }
                ],
            }
        ],
    }
    done = _promtool_test(tmp_path, [test])
    assert done.returncode == 0, done.stdout + done.stderr
