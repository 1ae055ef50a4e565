"""Where the watch loop stops keeping time: N windows x 10 Prometheus rules.

The real App (APScheduler ticking every second, SQLite store, the real ``prometheus``
source) runs in a child process per N against a fast local stub Prometheus
(``bench/stub_prometheus.py``, in this process), so only the watchdog's own cost is
measured. Every rule runs every ``--interval`` seconds (15 s at full size). Reported per
N over ``--duration`` seconds after every window is open:

* schedule drift: for each (window, rule), the gap between two consecutive queries
  arriving at the stub minus the interval (0 = on time), p50/p99/max;
* CPU share of one core (user + system time of the watchdog process / wall time);
* CPU seconds per sample taken (the same cost, whatever else the machine runs);
* RSS of the watchdog process at the end, and its peak;
* the machine's load average (1 min) while the row ran;
* the share of the measured time the garbage collector ran, and its full passes.

``--paths threads,async`` runs every row twice in the same invocation: once with the
old Prometheus path (prometheus-api-client in a thread pool,
:mod:`watchdog.sources.prometheus_threads`), once with the service's (httpx on the
event loop).

    python -m bench.scale --sizes 10,100,1000 --interval 15 --duration 60

``--rows`` names each row instead of sizes x modes, e.g. issue 23's two targets in one
run, old path beside new: ``--rows 1000:window,10000:shared --paths threads,async``.
``--open-together N`` opens N windows at a time instead of one after another.
``--gcs tuned,default`` runs every row with the collector as the service sets it
(``watchdog.process.freeze_startup_heap``) and with CPython's default thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from bench.stub_prometheus import StubPrometheus

RULES_PER_WINDOW = 10


def rules_yaml(interval: float, shared: bool) -> str:
    """10 rules; ``shared``: one ``by (service)`` query per rule (``shared_by``)."""
    lines = ["groups:", "  - name: scale", f"    interval: {interval:g}s", "    rules:"]
    for i in range(RULES_PER_WINDOW):
        if shared:
            query = f"sum by (service) (rate(bench_{i}_total[5m]))"
        else:
            query = f'sum(rate(bench_{i}_total{{service="{{{{ service }}}}"}}[5m]))'
        lines += [f"      - name: r{i}", "        source: prometheus", f"        query: '{query}'"]
        lines += ["        shared_by: service"] if shared else []
        lines += ['        threshold: "> 0.5"', "        action: rollback"]
    return "\n".join(lines) + "\n"


def _status(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Collections:
    """Seconds the garbage collector ran, and its full passes (a ``gc.callbacks`` hook)."""

    def __init__(self) -> None:
        self.seconds, self.full, self._began = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._began
        self.full += info["generation"] == 2


async def worker(
    windows: int,
    stub_url: str,
    interval: float,
    duration: float,
    shared: bool,
    via: str,
    default_gc: bool = False,
    together: int = 1,
) -> dict[str, float]:
    """In the child: run the App with ``windows`` open windows for ``duration`` seconds.

    ``via="threads"``: the engine samples through the old thread-pool source;
    ``default_gc``: CPython's collector thresholds instead of the service's;
    ``together``: windows opened at once (1: one after another).
    """
    from pydantic import SecretStr

    from watchdog.app import App
    from watchdog.foundation.model import Deployment
    from watchdog.plumbing.logs import configure_logging
    from watchdog.process import freeze_startup_heap
    from watchdog.settings import Settings
    from watchdog.sources import Sources

    # structlog's default renders tracebacks with every local (rich): far too slow for a
    # worker that may log many; JSON lines on stderr like the service
    configure_logging("warning", "json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(rules_yaml(interval, shared))
        settings = Settings(
            rules=[path],
            store_url=SecretStr(f"sqlite:///{tmp}/scale.db"),
            listen_port=0,
            prometheus_url=stub_url,
            tick=1.0,
            log_level="warning",
            # the benchmark sets the limits it needs: every window it opens is admitted
            max_open_windows=max(windows, 1),
        )
        app = App(settings)
        parts = await app.start()
        # a worker that fails still closes the store (its thread would keep the child
        # alive forever) and exits non-zero with the error: a benchmark never hangs
        try:
            freeze_startup_heap()
            if default_gc:
                gc.set_threshold(700, 10, 10)
            source = parts.engine.sources.get("prometheus")
            if via == "threads":
                source = threaded(settings)
            timed = Timed(source)
            parts.engine.sources = Sources({"prometheus": timed})
            opening, turns = time.time(), asyncio.Semaphore(together)

            async def open_one(i: int) -> None:
                async with turns:
                    d = Deployment(f"svc{i}", "prod", "v2", "v1")
                    await parts.windows.open_window(d, window_seconds=86400, actor="bench")

            await asyncio.gather(*(open_one(i) for i in range(windows)))
            opened = time.time() - opening  # a loop already short of time opens slowly
            await asyncio.sleep(interval)  # the first round: windows opened over some seconds
            collections = Collections()
            gc.callbacks.append(collections)
            started, cpu0 = time.time(), _cpu()
            await asyncio.sleep(duration)
            ended, cpu1 = time.time(), _cpu()
            gc.callbacks.remove(collections)
            rss = _status("VmRSS")
        finally:
            await app.stop()
            if via == "threads":
                await source.close()
    gaps = drift(timed.done, started, ended, interval)
    return {
        "start": started,
        "end": ended,
        "samples": len(gaps),
        "p50": pct(gaps, 0.5),
        "p99": pct(gaps, 0.99),
        "max": max(gaps, default=float("nan")),
        "cpu": (cpu1 - cpu0) / (ended - started),
        "rss": rss,
        "peak": _status("VmHWM"),
        "opened": opened,
        "gc": collections.seconds / (ended - started),
        "full": collections.full,
    }


def threaded(settings: Any) -> Any:
    """The old path: prometheus-api-client in a thread pool, configured the same way."""
    from watchdog.sources.prometheus_threads import ThreadedPrometheusSource

    s = settings
    return ThreadedPrometheusSource(
        s.prometheus_url,
        timeout=s.prometheus_timeout,
        retries=s.prometheus_retries,
        concurrency=s.prometheus_concurrency,
        grid=s.prometheus_scrape_interval,
        max_series=s.prometheus_max_series,
        max_bytes=s.prometheus_max_response_bytes,
    )


class Timed:
    """Wraps the engine's source: when each (window, rule) sample was in hand.

    Eight bytes a sample: kept as ``(time, key)`` tuples, 10,000 windows' 6,700 samples
    a second added ~100 MiB to the RSS measured within two minutes.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.done: dict[tuple[str, str], array[float]] = {}

    async def sample(self, rule: Any, ctx: Any) -> Any:
        result = await self.inner.sample(rule, ctx)
        key = (ctx.window_id, rule.name)
        times = self.done.get(key)
        if times is None:
            times = self.done[key] = array("d")
        times.append(time.time())
        return result

    async def close(self) -> None:
        return None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def drift(
    done: dict[tuple[str, str], array[float]], start: float, end: float, interval: float
) -> list[float]:
    """Gap between consecutive samples of each (window, rule), minus the interval."""
    out = []
    for times in done.values():
        pairs = itertools.pairwise(sorted(times))
        out += [b - a - interval for a, b in pairs if start <= b <= end]
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


def measure(
    windows: int,
    interval: float,
    duration: float,
    mode: tuple[bool, str, str],
    stub: StubPrometheus,
    together: int = 1,
) -> dict[str, Any]:
    """Run one child for ``windows`` and count the queries that reached the stub."""
    shared, path, collector = mode
    stub.take()
    argv = [sys.executable, "-m", "bench.scale", "--worker", str(windows), "--stub", stub.url]
    argv += ["--open-together", str(together)]
    argv += ["--interval", str(interval), "--duration", str(duration), "--path", path]
    argv += ["--shared"] if shared else []
    argv += ["--default-gc"] if collector == "default" else []
    # a hang guard, far above any healthy run: a worker that cannot finish fails loudly
    budget = 300 + 3 * interval + duration + windows * 0.1
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=budget)
    if done.returncode != 0:
        raise RuntimeError(f"scale worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    queries = [at for at, _ in stub.take() if result["start"] <= at <= result["end"]]
    span = result["end"] - result["start"]
    result.update(
        windows=windows,
        shared=shared,
        path=path,
        collector=collector,
        load=os.getloadavg()[0],
        expected=windows * RULES_PER_WINDOW * span / interval,
        queries_per_s=len(queries) / span,
    )
    return result


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| windows | rules | queries | Prometheus path | samples (expected) "
        "| queries to Prometheus/s | drift p50 | drift p99 | drift max | CPU of one core "
        "| CPU ms per sample | RSS | peak RSS | load (1 min) | collector | GC share "
        "| full GC passes | all open after |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        mode = "one per rule (`shared_by`)" if r["shared"] else "one per window"
        per_sample = r["cpu"] * (r["end"] - r["start"]) / max(r["samples"], 1) * 1000
        lines.append(
            f"| {int(r['windows'])} | {int(r['windows']) * RULES_PER_WINDOW} | {mode} "
            f"| {r['path']} | {int(r['samples'])} ({r['expected']:.0f}) "
            f"| {r['queries_per_s']:.1f} "
            f"| {r['p50']:.2f} s | {r['p99']:.2f} s | {r['max']:.2f} s "
            f"| {r['cpu'] * 100:.0f} % | {per_sample:.2f} "
            f"| {r['rss']:.0f} MiB | {r['peak']:.0f} MiB | {r['load']:.1f} "
            f"| {r['collector']} | {r['gc'] * 100:.0f} % | {r['full']} | {r['opened']:.0f} s |"
        )
    return "\n".join(lines)


def plan(rows: str | None, sizes: str, modes: str) -> list[tuple[int, bool]]:
    """(windows, shared) per row: ``--rows`` as given, else every size in every mode."""
    if rows:
        pairs = [r.split(":", 1) for r in rows.split(",")]
        return [(int(n), m == "shared") for n, m in pairs]
    return [(int(n), m == "shared") for n in sizes.split(",") for m in modes.split(",")]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--modes", default="window,shared", help="window, shared or both")
    parser.add_argument("--rows", help="SIZE:MODE,... instead of --sizes x --modes")
    parser.add_argument(
        "--paths", default="async", help="async (the service's), threads (the old one) or both"
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stub", help=argparse.SUPPRESS)
    parser.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--gcs", default="tuned", help="tuned (the service's), default (CPython's) or both"
    )
    parser.add_argument("--path", default="async", help=argparse.SUPPRESS)
    parser.add_argument("--default-gc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--open-together",
        type=int,
        default=1,
        help="windows opened at once (1: one after another, as before); the steady state "
        "without the ramp, where young windows' ages spread over the shared cuts",
    )
    args = parser.parse_args(argv)
    if args.open_together < 1:
        parser.error("--open-together must be at least 1")
    if args.worker is not None:
        run = worker(
            args.worker,
            args.stub,
            args.interval,
            args.duration,
            args.shared,
            args.path,
            args.default_gc,
            args.open_together,
        )
        print(json.dumps(asyncio.run(run)))
        return ""
    paths = args.paths.split(",")
    wanted = plan(args.rows, args.sizes, args.modes)
    stub = StubPrometheus([f"svc{i}" for i in range(max(n for n, _ in wanted))]).start()
    rows: list[dict[str, Any]] = []
    try:
        for n, m in wanted:
            for p, g in itertools.product(paths, args.gcs.split(",")):
                mode = (m, p, g)
                rows.append(
                    measure(n, args.interval, args.duration, mode, stub, args.open_together)
                )
                # each row as it ends: a long run that is stopped keeps what it measured
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        stub.stop()
    out = table(rows)
    print(out)
    return out


if __name__ == "__main__":
    main()
