"""Fault to rollback: the watchdog against a Prometheus alert routed by Alertmanager.

One run, one stack: the demo app (100 requests/s), a real Prometheus scraping it every
second and evaluating an alerting rule every second, two real Alertmanagers (one with
the defaults, ``group_wait: 30s``; one with ``group_wait: 0s``; both ``group_by:
[alertname]``) posting to a local recorder, and ``watchdog serve`` (tick 1 s, the rule
polled every second, no ``for``) whose rollback plan posts to the same recorder. The
condition is the same everywhere: 5xx ratio over ``rate(...[10s])`` above 5 %. A second
``watchdog serve`` reads the app's ``/metrics`` itself (``source: scrape``, no Prometheus
server, every second; its ratio counts since the window opened) and posts to its own path.

Each trial opens a new window, steps the 5xx ratio from 0 to 20 % at a known time and
waits for the rollback request and both webhooks (Prometheus gets a new alert name per
trial, so every trial is a new Alertmanager group). The physical floor is the first
instant the ratio is above 5 % in Prometheus' own data (range query at 50 ms steps).

    python -m bench.detection_latency --trials 5
    python -m bench.detection_latency --trials 1 --skip-default   # no 30 s wait
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.recorder import Recorder
from examples.stack import (
    DemoApp,
    PrometheusServer,
    WatchdogServer,
    start_alertmanager,
    start_demo_app,
    start_prometheus,
    start_watchdog,
    wait_for_query,
)

RATIO = (
    'sum(rate(http_requests_total{service="demo",status=~"5.."}[10s]))'
    ' / sum(rate(http_requests_total{service="demo"}[10s]))'
)
THRESHOLD = 0.05
TEMPLATED = RATIO.replace('"demo"', '"{{ service }}"')
PATHS = {
    "watchdog": "/rollback",
    "scrape": "/rollback-scrape",
    "am_zero": "/am/zero",
    "am_default": "/am/default",
}

WATCHDOG_RULES = f"""groups:
  - name: bench
    interval: 1s
    rules:
      - name: http-5xx-ratio
        source: prometheus
        query: '{TEMPLATED}'
        threshold: "> 5%"
        action: rollback
"""

SCRAPE_RULES = """groups:
  - name: bench
    interval: 1s
    rules:
      - name: http-5xx-ratio-scrape
        source: scrape
        url: http://{target}/metrics
        errors: {{metric: http_requests_total, match: {{service: demo, status: "~5.."}}}}
        total: {{metric: http_requests_total, match: {{service: demo}}}}
        threshold: "> 5%"
        no_data: ok
        action: rollback
"""

WATCHDOG_CONFIG = """window: 10m
tick: 1s
log_level: warning
default_plan: rollback
http_allowed_hosts: ["127.0.0.1"]
plans:
  rollback:
    steps:
      - name: call
        kind: http
        method: POST
        url: {url}
        json: {{version: "{{{{ version }}}}"}}
        timeout: 5s
"""


def alertmanager_yml(url: str, group_wait: str | None) -> str:
    wait = f"  group_wait: {group_wait}\n" if group_wait else ""
    return (
        f"route:\n  receiver: hook\n  group_by: [alertname]\n{wait}"
        f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {url}\n"
    )


def prometheus_rules(trial: int) -> str:
    return (
        "groups:\n  - name: bench\n    interval: 1s\n    rules:\n"
        f"      - alert: Bench5xxTrial{trial}\n        expr: '({RATIO}) > {THRESHOLD}'\n"
    )


class Bench:
    """The running stack and the trials run against it."""

    def __init__(
        self,
        demo: DemoApp,
        prom: PrometheusServer,
        watchdog: WatchdogServer,
        scraper: WatchdogServer,
        recorder: Recorder,
        rules: Path,
        skip_default: bool,
    ) -> None:
        self.demo, self.prom, self.watchdog, self.scraper = demo, prom, watchdog, scraper
        self.recorder, self.rules, self.skip_default = recorder, rules, skip_default
        self.alertmanagers = 1 if skip_default else 2
        self.rng = random.Random(9)

    def trial(self, n: int) -> dict[str, float]:
        """One fault; latencies (s) from the fault, per path, and the floor."""
        # Healthy first: a rule loaded while the last fault still shows would fire early.
        wait_for_query(self.prom.url, RATIO, lambda v: v == [0.0], timeout=60)
        self._arm_prometheus(n)
        window = self.watchdog.deploy(service="demo", environment="bench", version=f"t{n}")
        scraped = self.scraper.deploy(service="demo", environment="bench", version=f"t{n}")
        _until(lambda: self._sampled(self.watchdog, window["id"]), 30, "the first sample")
        _until(lambda: self._sampled(self.scraper, scraped["id"]), 30, "the first scrape")
        # A random phase against the scrape and tick grids: otherwise every trial would
        # start at the same point of the second, right after the watchdog's sample.
        time.sleep(self.rng.uniform(0, 1))
        before = time.time()
        self.demo.set_fault(error_ratio=0.2)
        fault = (before + time.time()) / 2
        alert = f"Bench5xxTrial{n}"
        matchers: dict[str, Callable[[Any], bool]] = {
            "watchdog": lambda b: isinstance(b, dict) and b.get("version") == f"t{n}",
            "scrape": lambda b: isinstance(b, dict) and b.get("version") == f"t{n}",
            "am_zero": lambda b: _fires(b, alert),
            "am_default": lambda b: _fires(b, alert),
        }
        if self.skip_default:
            del matchers["am_default"]
        found: dict[str, float] = {}
        done = lambda: self._collect(matchers, found, fault)  # noqa: E731
        _until(done, 90, f"trial {n}: {sorted(matchers)}")
        self.demo.heal()
        result = {name: at - fault for name, at in found.items()}
        result["floor"] = self._floor(fault) - fault
        return result

    def _arm_prometheus(self, n: int) -> None:
        self.rules.write_text(prometheus_rules(n))
        httpx.post(f"{self.prom.url}/-/reload", timeout=10).raise_for_status()
        _until(
            lambda: f"Bench5xxTrial{n}" in httpx.get(f"{self.prom.url}/api/v1/rules").text,
            30,
            "Prometheus to load the trial's rule",
        )
        # A reload re-applies the Alertmanager targets; an alert that fires before they are
        # back is dropped and only re-sent a minute later (resend_delay).
        _until(self._notifier_ready, 30, "Prometheus to find its Alertmanagers again")

    def _notifier_ready(self) -> bool:
        data = httpx.get(f"{self.prom.url}/api/v1/alertmanagers", timeout=5).json()["data"]
        return len(data["activeAlertmanagers"]) == self.alertmanagers

    @staticmethod
    def _sampled(watchdog: WatchdogServer, window_id: str) -> bool:
        rules = watchdog.window(window_id)["rules"]
        return all(r["last_eval_at"] is not None for r in rules)

    def _collect(
        self, matchers: dict[str, Callable[[Any], bool]], found: dict[str, float], after: float
    ) -> bool:
        for name, match in matchers.items():
            at = self.recorder.first(PATHS[name], match, after)
            if at is not None:
                found[name] = at
        return len(found) == len(matchers)

    def _floor(self, fault: float) -> float:
        params = {"query": RATIO, "start": fault - 1, "end": fault + 20, "step": 0.05}
        data = httpx.get(f"{self.prom.url}/api/v1/query_range", params=params, timeout=10).json()
        points = [(float(t), float(v)) for t, v in data["data"]["result"][0]["values"]]
        return min(t for t, v in points if v > THRESHOLD and t >= fault)


def _fires(body: Any, alert: str) -> bool:
    alerts = body.get("alerts", []) if isinstance(body, dict) else []
    return any(a["labels"].get("alertname") == alert and a["status"] == "firing" for a in alerts)


def _until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def run(trials: int, skip_default: bool, home: Path) -> list[dict[str, float]]:
    """Start the stack, run the trials, stop everything."""
    with Recorder() as rec, start_demo_app(home, service="demo", rps=100) as demo:
        ams = {"am_zero": "0s"} if skip_default else {"am_zero": "0s", "am_default": None}
        with _alertmanagers(home, rec, ams) as targets:
            rules = home / "bench-rules.yml"
            rules.write_text(prometheus_rules(-1))
            extra = (
                f"rule_files: [{str(rules)!r}]\nalerting:\n  alertmanagers:\n"
                f"    - static_configs:\n        - targets: {targets}\n"
            )
            with start_prometheus(home, [demo.target], extra_config=extra) as prom:
                (home / "rules.yml").write_text(WATCHDOG_RULES)
                (home / "scrape.yml").write_text(SCRAPE_RULES.format(target=demo.target))
                settings = _settings(home, "watchdog", rec.url + PATHS["watchdog"], prom.url)
                scrape = _settings(home, "scrape", rec.url + PATHS["scrape"], prom.url)
                with (
                    start_watchdog(home / "watchdog", settings) as watchdog,
                    start_watchdog(home / "scraper", scrape) as scraper,
                ):
                    bench = Bench(demo, prom, watchdog, scraper, rec, rules, skip_default)
                    return [bench.trial(n) for n in range(trials)]


def _settings(home: Path, name: str, url: str, prom_url: str) -> dict[str, str]:
    (home / f"{name}.cfg.yml").write_text(WATCHDOG_CONFIG.format(url=url))
    rules = "rules.yml" if name == "watchdog" else "scrape.yml"
    return {
        "config": str(home / f"{name}.cfg.yml"),
        "rules": str(home / rules),
        "prometheus_url": prom_url,
    }


class _alertmanagers:
    """Start one Alertmanager per entry; yields their ``host:port`` list."""

    def __init__(self, home: Path, rec: Recorder, waits: dict[str, str | None]) -> None:
        self.home, self.rec, self.waits = home, rec, waits
        self._stack: list[Any] = []

    def __enter__(self) -> list[str]:
        targets = []
        for name, wait in self.waits.items():
            config = alertmanager_yml(self.rec.url + PATHS[name], wait)
            cm = start_alertmanager(self.home, config)
            self._stack.append(cm)
            targets.append(f"127.0.0.1:{cm.__enter__().port}")
        return targets

    def __exit__(self, *exc: Any) -> None:
        for cm in reversed(self._stack):
            cm.__exit__(None, None, None)


def table(rows: list[dict[str, float]]) -> str:
    names = [
        ("floor", "physical floor (ratio first > 5 % in Prometheus' data)"),
        ("watchdog", "watchdog: fault → rollback request"),
        ("scrape", "watchdog `source: scrape` (no Prometheus): fault → rollback request"),
        ("am_zero", "Prometheus rule → Alertmanager group_wait 0s → webhook"),
        ("am_default", "Prometheus rule → Alertmanager defaults (group_wait 30s) → webhook"),
    ]
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    lines = ["| path | median | min | max | watchdog / path |", "|---|---:|---:|---:|---:|"]
    for key, label in names:
        if key not in med:
            continue
        values = [r[key] for r in rows]
        mine = ("floor", "watchdog", "scrape")
        ratio = f"{med['watchdog'] / med[key]:.2f}x" if key not in mine else ""
        lines.append(
            f"| {label} | {med[key]:.2f} s | {min(values):.2f} s | {max(values):.2f} s | {ratio} |"
        )
    gaps = [r["watchdog"] - r["floor"] for r in rows]
    lines += [
        "",
        f"Trials: {len(rows)}. Watchdog after the floor: median "
        f"{statistics.median(gaps):.2f} s, max {max(gaps):.2f} s "
        "(target ≤ one poll interval + 1 s = 2 s).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument(
        "--skip-default",
        action="store_true",
        help="leave out the Alertmanager with group_wait 30s (fast runs)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args.trials, args.skip_default, Path(tmp))
    out = table(rows)
    print(out)
    return out


if __name__ == "__main__":
    main()
