"""Confirmation judges only the restored version's samples (issue 21 item 5), on a real
Prometheus scraping one job every 5 s and another every 30 s, a real `watchdog serve`
whose `prometheus_scrape_interval` setting is left at its 15 s default (the setting
users forget), and `deploy start --wait` as a CI gate runs it.

Four demo apps, four deploys at once: per interval, one fault the rollback heals
(→ ``rolled_back`` with ``recovered``, exit 3) and one it does not (``external``, →
``rollback_ineffective``, exit 8). The error ratio reads ``rate(...[5m])``: before the
fix, the 15 s grid (and a range reaching back to the rollback instant) let the rolled
back version's errors into the confirmation of a healed one. This run proves the
outcomes after the fix; it does not catch the old behaviour every time (the same test
against the code before it also ended 3/8/3/8 when measured): which of the old ranges
reached back before the rollback depended on when the last evaluation fell.
tests/integration/test_prometheus_source.py pins the mechanism itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from examples.stack import (
    REPO,
    DemoApp,
    WatchdogServer,
    start_demo_app,
    start_prometheus,
    start_watchdog,
    wait_for_query,
)

pytestmark = pytest.mark.e2e

RULES = """\
groups:
  - name: confirm
    interval: 10s
    rules:
      - name: http-5xx-ratio
        source: prometheus
        job: "{{ labels.job }}"
        query: |
          sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[5m]))
          / sum(rate(http_requests_total{service="{{ service }}"}[5m]))
        threshold: "> 5%"
        no_data: ok
        action: rollback
        severity: critical
"""
SLOW_JOB = """\
  - job_name: slow
    scrape_interval: 30s
    scrape_timeout: 10s
    static_configs:
      - targets: {targets}
"""
# Per job: the scrape interval, and a confirmation long enough for two scrapes of the
# restored version after the one-interval wait (rate() needs two samples).
CONFIRM = {"demo": "30s", "slow": "100s"}


@dataclass
class Case:
    demo: DemoApp
    job: str
    heals: bool

    @property
    def expected(self) -> tuple[int, str]:
        return (3, "rolled_back") if self.heals else (8, "rollback_ineffective")


@contextlib.contextmanager
def world(tmp: Path) -> Iterator[tuple[WatchdogServer, list[Case]]]:
    with contextlib.ExitStack() as stack:
        apps = {
            name: stack.enter_context(start_demo_app(tmp, service=name, rps=40))
            for name in ("heal5", "stay5", "heal30", "stay30")
        }
        fast = [apps["heal5"].target, apps["stay5"].target]
        slow = json.dumps([apps["heal30"].target, apps["stay30"].target])
        prom = stack.enter_context(
            start_prometheus(tmp, fast, "5s", extra_config=SLOW_JOB.format(targets=slow))
        )
        for job in ("demo", "slow"):
            wait_for_query(prom.url, f'count(up{{job="{job}"}} == 1)', lambda v: v == [2.0], 90)
        rules = tmp / "rules.yml"
        rules.write_text(RULES)
        step = {
            "name": "call-rollback",
            "kind": "http",
            "url": "http://127.0.0.1:{{ labels.port }}/rollback",
            "json": {"version": "{{ previous_version }}"},
            "retries": 0,
        }
        config = tmp / "config.yml"
        config.write_text(
            json.dumps(
                {
                    "rules": [str(rules)],
                    "plans": {"demo": {"steps": [step]}},
                    "default_plan": "demo",
                    "http_allowed_hosts": ["127.0.0.1"],
                    "tick": "250ms",
                    "prometheus_url": prom.url,  # prometheus_scrape_interval: left at 15s
                }
            )
        )
        wd = stack.enter_context(start_watchdog(tmp / "wd", {"config": str(config)}))
        cases = [
            Case(apps["heal5"], "demo", True),
            Case(apps["stay5"], "demo", False),
            Case(apps["heal30"], "slow", True),
            Case(apps["stay30"], "slow", False),
        ]
        yield wd, cases


def gate(wd: WatchdogServer, case: Case) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env.update(WATCHDOG_API_TOKEN=wd.token, WATCHDOG_URL=wd.url)
    argv = [
        sys.executable, "-m", "watchdog", "deploy", "start", "--service", case.demo.service,
        "--version", "v2", "--previous-version", "v1", "--window", "5m",
        "--label", f"port={case.demo.port}", "--label", f"job={case.job}",
        "--confirm-for", CONFIRM[case.job], "--wait", "--poll", "0.5",
    ]  # fmt: skip
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def test_healing_recovers_and_persistent_is_ineffective_at_5s_and_30s(tmp_path: Path) -> None:
    with world(tmp_path) as (wd, cases):
        for case in cases:
            case.demo.set_fault(error_ratio=0.5, external=not case.heals)
        procs = [gate(wd, case) for case in cases]
        results = [proc.communicate(timeout=420) for proc in procs]
        log = wd.log()
        calls = [[c for c in case.demo.rollback_calls() if c["status"] == 200] for case in cases]
    # The intervals came from Prometheus, not from the 15 s setting.
    assert '"jobs": {"demo": 5.0, "slow": 30.0}' in log or "'demo': 5.0" in log, log[-3000:]
    for case, proc, (out, err), made in zip(cases, procs, results, calls, strict=True):
        code, phase = case.expected
        assert proc.returncode == code, f"{case.demo.service}: {out}\n{err}"
        assert out.splitlines()[-1] == f"outcome: {phase} (exit {code})"
        if case.heals:
            assert any(" recovered: http-5xx-ratio back to ok" in line for line in out.splitlines())
        else:
            assert any(
                "rollback_ineffective: rollback ineffective" in line for line in out.splitlines()
            )
        assert len(made) == 1, made  # exactly one rollback, never a second
