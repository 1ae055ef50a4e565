"""`make bench`: run every benchmark at full size and write docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from bench import alertmanager_receiver, engine_overhead, slack_ack, status_costs

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {sys.version.split()[0]}"


def main() -> None:
    sections = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}. Reproduce with `make bench`.",
        "",
        "## Engine overhead per evaluation",
        "",
        "N windows x 10 rules against an instant in-memory source: only the watchdog's own "
        "work (scheduling, `evaluate()`, SQLite state writes). "
        "Command: `python -m bench.engine_overhead --sizes 10,100,1000 --rounds 5`.",
        "",
        engine_overhead.main(["--sizes", "10,100,1000", "--rounds", "5"]),
        "",
        "A round at 1,000 windows (10,000 evaluations) must fit in the rules' 15 s interval; "
        "the per-evaluation cost staying flat (ratio ≈ 1) says nothing grows worse than "
        "linearly. Most of it is the SQLite write of each rule's state.",
        "",
        "## Status page, graphs and replay",
        "",
        "Command: `python -m bench.status_costs --writes 2000 --renders 50 --steps 2000`.",
        "",
        status_costs.main(["--writes", "2000", "--renders", "50", "--steps", "2000"]),
        "",
        "Each evaluation now also appends a rule point (what the graphs draw): one more "
        "autocommitted INSERT, with the pruning scan paid once every 50 writes.",
        "",
        "## Alertmanager receiver",
        "",
        "The real App (SQLite file store, `rules/alerts.yml`, 10 open windows) behind its "
        "socket; webhook payloads (version 4) of N alerts posted one at a time. The first "
        "delivery records new alerts; the repeats are what Alertmanager sends every "
        "`group_interval` and from every HA peer. "
        "Command: `python -m bench.alertmanager_receiver --sizes 1,50,500,3000 --requests 200`.",
        "",
        alertmanager_receiver.main(["--sizes", "1,50,500,3000", "--requests", "200"]),
        "",
        "Target: p99 ≤ 50 ms at 500 alerts. Parsing and validating the body and one "
        "statement per new or changed alert dominate; unchanged repeats only move "
        "`last_seen` and `notifications` in one statement. `watchdog serve` freezes the "
        "startup heap out of the garbage collector (`gc.freeze()`): without it, full "
        "collections walking every long-lived object roughly tripled the p99 at 500 alerts "
        "(62 ms without it, 21 ms with it, in two runs of this benchmark on the same "
        "machine). What tail remains is SQLite WAL "
        "checkpoints and a loaded machine.",
        "",
        "## Slack interaction acknowledgement latency",
        "",
        "Signed *Acknowledge* clicks sent one after another to `/slack/interactions` of the "
        "real App (SQLite store, outbox, delivery worker, slack_sdk client against a local fake "
        "Slack), idle and with 50 http-probe rule checks always in flight (each probe takes "
        "500 ms, rules run every 100 ms). Slack gives up after 3 s; the target is p99 <= 300 ms "
        "under load. Command: `python -m bench.slack_ack --rules 50 --clicks 300`.",
        "",
        slack_ack.main(["--rules", "50", "--clicks", "300"]),
        "",
        "The handler only verifies the signature and parses the payload before answering; "
        "the action, the journal entry and the message update run after the answer.",
        "",
    ]
    DOC.write_text("\n".join(sections))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
