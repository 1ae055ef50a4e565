"""`watchdog check --prometheus`: rules that could never fire are errors with file:line,
asked of a real Prometheus scraping the demo app (http_requests_total{service,...}, a
latency histogram whose largest finite bucket is 10 s). During a window, the journal
says once that a rule's selector matches nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.stack import PromStack, free_port
from tests.integration.test_source_outage import TOKEN
from tests.rules import rules as rule_file
from tests.world import api, served, started, until
from watchdog.cli.main import main
from watchdog.settings import Settings

RULES = """\
groups:
  - name: g
    rules:
      - name: ratio-ok
        source: prometheus
        query: |
          sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[1m]))
          / sum(rate(http_requests_total{service="{{ service }}"}[1m]))
        threshold: "> 5%"
      - name: celery-wrong-name
        source: prometheus
        query: sum(rate(celery_task_failed_total{service="{{ service }}"}[5m]))
        threshold: "> 0"
      - name: no-service-label
        source: prometheus
        query: min(up{job="demo", service="{{ service }}"})
        threshold: "< 1"
      - name: p95-unreachable
        source: prometheus
        query: |
          histogram_quantile(0.95,
            sum by (le) (rate(http_request_duration_highr_seconds_bucket{service="{{ service }}"}[5m])))
        threshold: "> 90"
      - name: p95-ok
        source: prometheus
        query: |
          histogram_quantile(0.95,
            sum by (le) (rate(http_request_duration_highr_seconds_bucket{service="{{ service }}"}[5m])))
        threshold: "> 2"
      - name: teapots
        source: prometheus
        query: sum(rate(http_requests_total{service="{{ service }}",status="418"}[1m]))
        threshold: "> 0"
      - name: shared
        source: prometheus
        query: sum by (service) (rate(http_requests_total[1m]))
        shared_by: service
        threshold: "> 1000"
"""


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    return path


def test_rules_that_can_never_fire_are_errors_with_file_line(
    prom_stack: PromStack, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = check(capsys, str(rules), "--prometheus", prom_stack.prom_url)
    assert code == 1
    assert err == [
        f"{rules}:10: rule 'celery-wrong-name': no series named celery_task_failed_total "
        "(is the name right, is its exporter scraped?)",
        f"{rules}:14: rule 'no-service-label': series up have no 'service' label, so the rule "
        "never matches (add it by relabelling, see deploy/prometheus.yml)",
        f"{rules}:18: rule 'p95-unreachable': threshold > 90 can never be reached: "
        "histogram_quantile over http_request_duration_highr_seconds_bucket is at most 60, its "
        'largest finite bucket (le="60"); use a histogram with buckets above 90',
        f"{rules}:30: note: rule 'teapots': status=\"418\" matches no series of "
        "http_requests_total right now: status has 200, 500 (fine for an error counter whose "
        "series appears with its first error)",
    ]
    assert out.splitlines()[-1] == (
        f"FAILED: {prom_stack.prom_url}: 7 rules reading Prometheus checked: 3 rules can never "
        "fire, 1 note"
    )


def test_the_service_and_its_label_name_are_options(
    prom_stack: PromStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only_ratio = tmp_path / "ratio.yml"
    only_ratio.write_text(RULES.split("      - name: celery-wrong-name")[0])
    url = prom_stack.prom_url
    assert check(capsys, str(only_ratio), "--prometheus", url, "--service", "demo")[0] == 0
    code, err, _ = check(capsys, str(only_ratio), "--prometheus", url, "--service", "shop")
    assert code == 1 and err == [
        f"{only_ratio}:4: rule 'ratio-ok': no series http_requests_total{{service=\"shop\"}}"
    ]
    code, err, _ = check(capsys, str(only_ratio), "--prometheus", url, "--service-label", "app")
    assert code == 1 and err == [
        f"{only_ratio}:4: rule 'ratio-ok': http_requests_total is matched on {{{{ service }}}} "
        "by the label service, but the service label is 'app'"
    ]


def test_an_unreachable_prometheus_exits_2(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, err, _ = check(capsys, str(rules), "--prometheus", url)
    assert code == 2 and err == [f"watchdog: cannot ask Prometheus at {url}: ConnectionError"]


async def five_polls(settings: Settings) -> tuple[dict[str, Any], str]:
    """Start the app, open a window of the demo service, wait until every rule was polled
    five times: the window's detail and the app's /metrics then."""
    async with started(settings) as app:
        body = {"service": "demo", "version": "v2", "window": "10m"}
        opened = (await api(app, "POST", "/api/v1/deployments", token=TOKEN, json=body)).json()

        async def polled() -> dict[str, Any] | None:
            got = await api(app, "GET", f"/api/v1/deployments/{opened['id']}", token=TOKEN)
            d = got.json()
            return d if all(len(r["samples"]) >= 5 for r in d["rules"]) else None

        d = await until(polled, "five polls of each rule")
        metrics = (await api(app, "GET", "/metrics", token=TOKEN)).text
    return d, metrics


async def test_a_window_journals_once_that_a_selector_matches_nothing(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    file = rule_file(tmp_path, "live.yml").group("g", "200ms")
    celery = 'sum(rate(celery_task_failed_total{service="{{ service }}"}[1m]))'
    teapot = 'sum(rate(http_requests_total{service="{{ service }}",status="418"}[1m]))'
    file.prometheus("celery", celery, no_data="ok", above=0)
    file.prometheus("errors", teapot, no_data="ok", above=0)
    d, _ = await five_polls(
        served(tmp_path, file, token=TOKEN, prometheus_url=prom_stack.prom_url, tick=0.1)
    )
    told = [e for e in d["events"] if e["kind"] == "selector_unmatched"]
    # The 418 series is absent (absent is zero), but http_requests_total of demo exists.
    assert [(e["rule"], e["data"]["severity"]) for e in told] == [("celery", "warning")]
    assert told[0]["message"] == (
        "celery can never fire: no series named celery_task_failed_total "
        "(is the name right, is its exporter scraped?)"
    )


async def test_a_query_prometheus_refuses_is_a_loud_rule_error_not_inconclusive(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    # limitk parses offline (promql-parser knows it) but this Prometheus (2.42) answers
    # 400 "unknown function": the rule cannot run, which must be said once, loudly.
    import structlog

    path = tmp_path / "refused.yml"
    path.write_text(
        "groups:\n  - name: g\n    interval: 200ms\n    rules:\n"
        "      - name: newer-function\n        source: prometheus\n"
        '        query: count(limitk(1, up{job="demo"}))\n'
        '        threshold: "> 100"\n'
        "      - name: fine\n        source: prometheus\n"
        '        query: count(up{job="demo"})\n        threshold: "> 100"\n'
    )
    settings = served(tmp_path, path, token=TOKEN, prometheus_url=prom_stack.prom_url, tick=0.1)
    with structlog.testing.capture_logs() as logs:
        d, metrics = await five_polls(settings)
    told = [e for e in d["events"] if e["kind"] == "rule_error"]
    assert [e["rule"] for e in told] == ["newer-function"]  # once, and only that rule
    assert told[0]["message"] == (
        "newer-function cannot run: Prometheus refused its query (Prometheus answered HTTP 400 "
        'bad_data: 1:7: parse error: unknown function with name "limitk"); fix the rule '
        f"({path}:5) and reload"
    )
    assert told[0]["data"]["severity"] == "critical"
    refused = [
        line for line in metrics.splitlines() if line.startswith("watchdog_rule_errors_total{")
    ]
    assert len(refused) == 1 and 'rule="newer-function"' in refused[0]
    assert float(refused[0].split()[-1]) >= 5
    errors = [e for e in logs if e["log_level"] == "error" and e["event"] == "rule query refused"]
    assert [e["rule"] for e in errors] == ["newer-function"]
