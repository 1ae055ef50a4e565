"""`make bench`: run every benchmark at full size and write docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from bench import engine_overhead, slack_ack

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
