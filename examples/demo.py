"""`make demo`: the whole loop end to end on the embedded default, in about a minute.

1. Start the fault-injectable demo app and a real Prometheus (Debian package) scraping it.
2. Start `watchdog serve` (SQLite store, examples/demo/{rules,watchdog}.yml).
3. Open a deployment window, let it watch a healthy app, then inject a 30 % 5xx spike.
4. Print the story as it happens: pending → firing → rollback started → succeeded →
   confirming the restored version → recovered (and how long it took).
5. Keep ticking a while to show the rollback is not repeated, print the journal, exit 0.

Run: python -m examples.demo   (the Makefile does)
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from examples.stack import (
    REPO,
    WatchdogServer,
    start_demo_app,
    start_prometheus,
    start_watchdog,
    wait_for_query,
)

HOME = REPO / ".demo"
TERMINAL = {
    "rolled_back",
    "rollback_ineffective",
    "rollback_failed",
    "passed",
    "aborted",
    "superseded",
}


def say(text: str) -> None:
    """Print a timestamped line right away."""
    print(f"{time.strftime('%H:%M:%S')}  {text}", flush=True)


class Story:
    """Prints each new journal event once, as the window's story moves on."""

    def __init__(self, watchdog: WatchdogServer, window_id: str) -> None:
        self.watchdog = watchdog
        self.window_id = window_id
        self.seen = 0

    def poll(self) -> dict[str, Any]:
        detail = self.watchdog.window(self.window_id)
        for event in detail["events"][self.seen :]:
            rule = f" [{event['rule']}]" if event.get("rule") else ""
            say(f"  {event['kind']:<20}{rule} {event['message']}")
        self.seen = len(detail["events"])
        return detail

    def until(self, done: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        detail = self.poll()
        while not done(detail) and time.monotonic() < deadline:
            time.sleep(0.5)
            detail = self.poll()
        return detail


def rules_line(detail: dict[str, Any]) -> str:
    parts = []
    for rule in detail["rules"]:
        value = rule["last_value"]
        shown = "-" if value is None else f"{value:.3f}"
        parts.append(f"{rule['name']}={shown} ({rule['verdict']})")
    return ", ".join(parts)


def run(home: Path) -> int:
    with start_demo_app(home, service="demo", rps=100) as app:
        say(f"demo app on {app.url}")
        with start_prometheus(home, [app.target]) as prom:
            say(f"prometheus on {prom.url}, scraping every 1s")
            settings = {
                "config": str(REPO / "examples/demo/watchdog.yml"),
                "rules": str(REPO / "examples/demo/rules.yml"),
                "prometheus_url": prom.url,
                "log_format": "json",
            }
            with start_watchdog(home / "watchdog", settings) as watchdog:
                say(f"watchdog on {watchdog.url} (SQLite store in {home / 'watchdog'})")
                # Prometheus' first scrape happens while the watchdog starts: no wait here.
                wait_for_query(prom.url, 'up{job="demo"}', lambda v: v == [1.0], timeout=120)
                return scenario(app, watchdog)


def scenario(app: Any, watchdog: WatchdogServer) -> int:
    window = watchdog.deploy(
        service="demo",
        environment="demo",
        version="v2",
        previous_version="v1",
        labels={"port": str(app.port)},
    )
    say(f"deployed demo v2: window {window['id']} opened, watching for 2 minutes")
    story = Story(watchdog, window["id"])
    story.until(lambda d: all(r["last_value"] is not None for r in d["rules"]), 120)
    time.sleep(2)  # one healthy reading on screen, then the fault
    say(f"healthy: {rules_line(story.poll())}")
    say("injecting a fault: 30% of requests now answer 500")
    app.set_fault(error_ratio=0.3)
    detail = story.until(lambda d: d["window"]["phase"] in TERMINAL, timeout=180)
    phase = detail["window"]["phase"]
    say(f"window phase: {phase}")
    say("ticking on for 5 seconds to show the rollback is not repeated ...")
    time.sleep(5)
    story.poll()
    calls = app.rollback_calls()
    say(f"the demo app's rollback endpoint was called {len(calls)} time(s)")
    print_journal(story.poll())
    recovered = any(e["kind"] == "recovered" for e in detail["events"])
    ok = phase == "rolled_back" and len(calls) == 1 and recovered
    say("demo OK: rolled back exactly once, recovery confirmed" if ok else "demo FAILED")
    if not ok:
        print(watchdog.log()[-4000:], file=sys.stderr)
    return 0 if ok else 1


def print_journal(detail: dict[str, Any]) -> None:
    print("\njournal of window", detail["window"]["id"])
    for event in detail["events"]:
        rule = event.get("rule") or ""
        print(f"  {event['at']}  {event['kind']:<20} {rule:<16} {event['message']}")
    print()


def main() -> int:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    try:
        return run(HOME)
    except (RuntimeError, TimeoutError) as exc:
        say(f"demo could not run: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
