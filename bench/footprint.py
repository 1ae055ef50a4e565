"""Footprint of the real ``watchdog serve`` process: start-to-ready time and idle RSS.

Each trial starts ``python -m watchdog serve`` (SQLite store, the demo's settings and
rules: one Prometheus rule, one HTTP probe, a rollback plan) and polls ``/readyz``
every 10 ms: start-to-ready is from spawning the process to the first 200. After
``--idle`` seconds with nothing to watch, the process' resident set (VmRSS from
/proc) is read. Targets: ready ≤ 2 s, idle RSS ≤ 80 MB.

    python -m bench.footprint --trials 5 --idle 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from examples.stack import REPO, start_watchdog


def rss_mb(pid: int) -> float:
    """Resident set of ``pid`` in MB (10^6 bytes, the target's unit; /proc counts KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")


def trial(home: Path, idle: float) -> tuple[float, float]:
    """(seconds to ready, idle RSS in MB) of one fresh process."""
    settings = {
        "config": str(REPO / "examples/demo/watchdog.yml"),
        "rules": str(REPO / "examples/demo/rules.yml"),
        "log_level": "warning",
    }
    started = time.monotonic()
    with start_watchdog(home, settings) as server:
        while True:
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 30:
                raise TimeoutError("watchdog serve not ready within 30 s")
            time.sleep(0.01)
        ready = time.monotonic() - started
        time.sleep(idle)
        return ready, rss_mb(server.proc.pid)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before RSS")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [trial(Path(tmp) / f"t{i}", args.idle) for i in range(args.trials)]
    ready = [r for r, _ in rows]
    rss = [m for _, m in rows]
    out = "\n".join(
        [
            "| measurement | median | min | max | target |",
            "|---|---:|---:|---:|---:|",
            f"| start to ready | {statistics.median(ready):.2f} s | {min(ready):.2f} s "
            f"| {max(ready):.2f} s | ≤ 2 s |",
            f"| idle RSS after {args.idle:g} s | {statistics.median(rss):.1f} MB "
            f"| {min(rss):.1f} MB | {max(rss):.1f} MB | ≤ 80 MB |",
        ]
    )
    print(out)
    return out


if __name__ == "__main__":
    main()
