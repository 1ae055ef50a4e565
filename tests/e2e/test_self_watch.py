"""The watchdog watching itself, through a real `watchdog serve` scraped by a real Prometheus.

One run, three phases, each waited for by an event (Prometheus samples, evaluation
counters, journal entries), never by the clock:

* idle (no window) and steady (one healthy window with a PromQL rule, an HTTP probe and a
  scrape rule, probed every half second): no info-level line per probe or per scrape;
* broken (a window whose scrape target is gone, whose webhook is gone, rolled back by
  hand with a plan whose endpoint is gone): the lines a person must read are warning or
  error, and every line about a window names its window, service and version;
* every query of ``deploy/grafana-dashboard.json`` returns data from that Prometheus.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import (
    REPO,
    PromStack,
    WatchdogServer,
    free_port,
    prometheus_config,
    query_values,
    start_watchdog,
    wait_for_query,
)
from tests.rules import Rules, rules

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "deploy" / "grafana-dashboard.json"

RATIO = 'sum(rate(http_requests_total{service="{{ service }}", status=~"5.."}[5s]))'
PORT = "http://127.0.0.1:{{ labels.port }}"


def rule_file(home: Path) -> Rules:
    """A 5xx rate, the demo's health and a scrape rule that never fires."""
    file = rules(home).group("self-watch", "0.5s")
    file.prometheus("demo-5xx", RATIO, above=100, no_data="ok")
    file.http("demo-health", f"{PORT}/health", timeout="2s")
    metric = {"metric": "http_requests_total"}
    return file.rule(
        "demo-scrape", "scrape", url=f"{PORT}/metrics", value="gauge", metric=metric,
        threshold="< 0", no_data="ok",
    )  # fmt: skip


PLAN = """plans:
  gone:
    steps:
      - name: call-the-deploy-tool
        kind: http
        method: POST
        url: http://127.0.0.1:{dead}/rollback
        timeout: 1s
        retries: 0
http_allowed_hosts: ["127.0.0.1"]
"""


def lines(server: WatchdogServer) -> list[dict[str, Any]]:
    """The JSON log lines written so far (stderr is no terminal: JSON, as in production)."""
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def wait(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}")
        time.sleep(0.2)


def evaluations(server: WatchdogServer, rule: str) -> float:
    """``watchdog_rule_evaluations_total`` for ``rule``, summed over verdicts."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    pattern = re.compile(rf'^watchdog_rule_evaluations_total\{{rule="{rule}",.*\}} (\S+)$', re.M)
    return sum(float(v) for v in pattern.findall(text))


@pytest.fixture(scope="module")
def watched(
    prom_stack: PromStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WatchdogServer]:
    """`serve` with the rules above, and the stack's Prometheus scraping it too."""
    home = tmp_path_factory.mktemp("self-watch")
    dead = free_port()  # nothing listens here: the broken window's endpoints
    rule_file(home).write()
    (home / "watchdog.yml").write_text(PLAN.format(dead=dead))
    settings = {
        "rules": str(home / "rules.yml"),
        "config": str(home / "watchdog.yml"),
        "prometheus_url": prom_stack.prom_url,
        "prometheus_scrape_interval": "1s",
        "tick": "0.2s",
        "notify__webhook_url": f"http://127.0.0.1:{dead}/hook",
        "notify__blind_after": "2",
    }
    with start_watchdog(home / "wd", settings) as server:
        prometheus = prom_stack.prometheus
        job = f"  - job_name: watchdog\n    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
        config = prometheus_config([prom_stack.demo.target], "1s", extra_config=job)
        (prometheus.home / "prometheus.yml").write_text(config)
        httpx.post(f"{prometheus.url}/-/reload", timeout=10).raise_for_status()
        server.dead = dead  # type: ignore[attr-defined]
        yield server


def test_idle_and_steady_logs_have_no_line_per_probe(
    watched: WatchdogServer, prom_stack: PromStack
) -> None:
    started = len(lines(watched))
    # Idle: Prometheus scrapes /metrics (an HTTP request each) five times.
    wait_for_query(
        prom_stack.prom_url, 'count_over_time(up{job="watchdog"}[1m])', lambda v: v >= [5.0]
    )
    idle = lines(watched)[started:]
    assert [e for e in idle if e["level"] != "debug"] == []

    labels = {"port": str(prom_stack.demo.port)}
    window = watched.deploy(service="demo", version="v9", labels=labels)
    rules = ("demo-5xx", "demo-health", "demo-scrape")
    wait("20 evaluations of each rule", lambda: all(evaluations(watched, r) >= 20 for r in rules))
    steady = lines(watched)[started + len(idle) :]
    told = [e for e in steady if e["level"] != "debug"]
    # 60 probes and queries, and only the window's news: it opened, and the webhook
    # (nothing listens) refused that once (later retries are debug).
    assert [(e.get("kind"), e["event"]) for e in told] == [
        ("window_opened", "watching demo v9 in production for 1800s (3 rules)"),
        (None, "delivery will be retried"),
    ]
    assert all(e["level"] == "info" and e["window"] == window["id"] for e in told)
    assert not [
        e for e in steady if e.get("logger", "").startswith(("httpx", "urllib3", "aiohttp"))
    ]


@pytest.fixture(scope="module")
def broken(watched: WatchdogServer) -> dict[str, Any]:
    """A window whose scrape target, webhook and rollback endpoint are gone: told blind,
    then rolled back by hand, which fails. Returns the window."""
    dead = watched.dead  # type: ignore[attr-defined]
    window = watched.deploy(
        service="broken", version="v2", previous_version="v1", force=True,
        labels={"port": str(dead)}, plan="gone",
    )  # fmt: skip

    def journal_has(kind: str) -> bool:
        return any(e["kind"] == kind for e in watched.window(window["id"])["events"])

    wait("the scrape target to be told blind", lambda: journal_has("watchdog_blind"))
    response = watched.api("POST", f"/api/v1/deployments/{window['id']}/rollback", json={})
    assert response.status_code in (200, 202), response.text
    wait("the rollback to fail", lambda: journal_has("rollback_failed"))
    return window


def test_what_needs_a_person_is_a_warning_or_an_error_naming_the_window(
    watched: WatchdogServer, broken: dict[str, Any]
) -> None:
    mine = [e for e in lines(watched) if e.get("window") == broken["id"]]
    by_kind = {e.get("kind"): e for e in mine}
    assert by_kind["rollback_failed"]["level"] == "error"
    assert by_kind["watchdog_blind"]["level"] == "warning"
    assert by_kind["watchdog_blind"]["rule"] == "demo-scrape"
    # The source is named as it was reached (host and port), on the line and the gauge.
    source = f"scrape target 127.0.0.1:{watched.dead}"  # type: ignore[attr-defined]
    assert by_kind["watchdog_blind"]["event"].startswith(f"watchdog blind: {source} cannot")
    metrics = httpx.get(f"{watched.url}/metrics", timeout=5).text
    assert f'watchdog_source_blind{{source="{source}"}} 1.0' in metrics
    # The webhook refuses every notification: they wait in the outbox, and it shows.
    pending = re.search(r"^watchdog_outbox_pending (\S+)$", metrics, re.M)
    assert pending is not None and float(pending.group(1)) > 0
    for entry in mine:
        assert entry["service"] == "broken" and entry["version"] == "v2", entry
    # Every line about some window names its service and version too.
    assert all({"service", "version"} <= e.keys() for e in lines(watched) if "window" in e)


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of the shipped dashboard, variables set."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "15s").replace("$job", "watchdog")
            out.append((panel["title"], expr))
    return out


@pytest.mark.usefixtures("broken")  # a failed rollback, a refused webhook: data everywhere
def test_every_dashboard_query_returns_data(prom_stack: PromStack) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    empty = []
    for title, expr in queries:
        try:
            wait_for_query(prom_stack.prom_url, expr, timeout=30)
        except TimeoutError:
            empty.append((title, expr, query_values(prom_stack.prom_url, expr)))
    assert empty == []
