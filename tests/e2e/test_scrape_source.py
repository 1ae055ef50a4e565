"""`source: scrape` through a real `watchdog serve`: the demo app's /metrics, no Prometheus."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from examples.stack import REPO, PromStack, start_watchdog

pytestmark = pytest.mark.e2e

RULES = """groups:
  - name: scrape
    interval: 1s
    rules:
      - name: http-5xx-ratio-scrape
        source: scrape
        url: http://127.0.0.1:{{{{ labels.port }}}}/metrics
        errors: {{metric: http_requests_total, match: {{service: "{{{{ service }}}}", status: "~5.."}}}}
        total: {{metric: http_requests_total, match: {{service: "{{{{ service }}}}"}}}}
        threshold: "> 5%"
        for: 2s
        no_data: ok
        action: rollback
        severity: critical
"""


def test_a_fault_seen_in_scraped_metrics_rolls_back_once(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    demo = prom_stack.demo
    demo.heal()
    rules = tmp_path / "scrape.yml"
    rules.write_text(RULES.format())
    settings = {"config": str(REPO / "examples/demo/watchdog.yml"), "rules": str(rules)}
    with start_watchdog(tmp_path / "wd", settings) as wd:
        window = wd.deploy(service="demo", version="s2", previous_version="s1",
                           labels={"port": str(demo.port)})  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # healthy: two evaluations with values
            rule = wd.window(window["id"])["rules"][0]
            if rule["last_value"] is not None:
                break
            time.sleep(0.2)
        assert rule["verdict"] == "ok" and rule["last_value"] == 0.0
        demo.set_fault(error_ratio=0.5)
        try:
            while time.monotonic() < deadline + 30:
                if wd.window(window["id"])["window"]["phase"] in ("rolled_back", "rollback_failed"):
                    break
                time.sleep(0.2)
        finally:
            demo.heal()
        detail = wd.window(window["id"])
        log = wd.log()
    assert detail["window"]["phase"] == "rolled_back"
    # Issue 25: httpx logged every scrape and step at info; held at warning unless debug.
    lines = [json.loads(line) for line in log.splitlines()]
    assert any(line["level"] == "info" and "rollback succeeded" in line["event"] for line in lines)
    assert not [line for line in lines if line.get("logger", "").startswith(("httpx", "httpcore"))]
    calls = [c for c in demo.rollback_calls()
             if str(c["headers"].get("Idempotency-Key", "")).startswith(window["id"])]  # fmt: skip
    assert len(calls) == 1 and calls[0]["body"]["version"] == "s1"
    firing = [e for e in detail["events"] if e["kind"] == "rule_firing"]
    assert len(firing) == 1
