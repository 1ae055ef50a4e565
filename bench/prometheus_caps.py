"""One Prometheus sample of a query matching N series, with and without the answer caps.

A real Prometheus serves N series of ``wd_big`` backfilled with ``promtool tsdb
create-blocks-from openmetrics``; the real ``prometheus`` source samples ``wd_big`` once
with the default caps (``prometheus_max_series``, ``prometheus_max_response_bytes``) and
once with both lifted. Reported: the sample's kind, its wall time, the longest the event
loop went without running a 10 ms ticker (wall time, and the CPU this process spent in
that gap: on a shared machine the wall gap counts other processes' turns too), and the
process's peak RSS before and after the sample (each case in its own child process).

    python -m bench.prometheus_caps --series 200000
    python -m bench.prometheus_caps --query 'wd_big{pod=~"pod-0[0-8].*"}'  # 7.98 MiB
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from examples.stack import start_prometheus
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource


async def _lagging(stop: asyncio.Event) -> tuple[float, float]:
    worst = worst_cpu = 0.0
    last, last_cpu = time.monotonic(), time.process_time()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now, cpu = time.monotonic(), time.process_time()
        worst, worst_cpu = max(worst, now - last - 0.01), max(worst_cpu, cpu - last_cpu)
        last, last_cpu = now, cpu
    return worst, worst_cpu


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


async def _sample(url: str, at: float, capped: bool, query: str) -> dict[str, object]:
    lifted = {} if capped else {"max_series": 10**7, "max_bytes": 1 << 31}
    source = PrometheusSource(url, timeout=120, retries=0, concurrency=1, **lifted)
    rule = PrometheusRule.model_validate(
        {"name": "big", "source": "prometheus", "query": query, "threshold": "> 0"}
    )
    warm = rule.model_copy(update={"query": "count(wd_big)"})
    await source.sample(warm, SampleContext("bench", {}, at))  # the client's connection
    before = _rss_mb()
    stop = asyncio.Event()
    lag = asyncio.create_task(_lagging(stop))
    started = time.monotonic()
    sample = await source.sample(rule, SampleContext("bench", {}, at))
    took = time.monotonic() - started
    stop.set()
    await source.close()
    gap, gap_cpu = await lag
    return {
        "caps": "default" if capped else "lifted",
        "sample": sample.kind.value,
        "why": sample.error or sample.detail,
        "seconds": round(took, 2),
        "loop_gap": round(gap, 3),
        "loop_gap_cpu": round(gap_cpu, 3),
        "rss_mb_before": before,
        "rss_mb_peak": _rss_mb(),
    }


def _blocks(tmp: Path, series: int) -> tuple[Path, float]:
    at = float(int(time.time()) - 600)
    source = tmp / "big.om"
    with source.open("w") as f:
        f.write("# TYPE wd_big gauge\n")
        for i in range(series):
            f.write(f'wd_big{{pod="pod-{i:06d}",service="big"}} 1 {at:.0f}\n')
        f.write("# EOF\n")
    promtool = shutil.which("promtool") or "promtool"
    data = tmp / "data"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    return data, at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200_000)
    parser.add_argument("--query", default="wd_big")
    parser.add_argument("--child", nargs=3, metavar=("URL", "AT", "CAPPED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, at, capped = args.child
        print(json.dumps(asyncio.run(_sample(url, float(at), capped == "1", args.query))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, at = _blocks(Path(tmp), args.series)
        with start_prometheus(Path(tmp), [], data=data) as prom:
            print(f"{args.series:,} series of wd_big on a real Prometheus")
            # Warm it up (blocks mmapped, postings read) so neither case pays for that.
            params = {"query": "count(wd_big)", "time": repr(at)}
            httpx.get(f"{prom.url}/api/v1/query", params=params, timeout=60).raise_for_status()
            for capped in ("1", "0"):
                argv = [sys.executable, "-m", "bench.prometheus_caps", "--query", args.query]
                argv.append("--child")
                out = subprocess.run(
                    [*argv, prom.url, repr(at), capped], capture_output=True, text=True, check=True
                )
                print(out.stdout.strip())


if __name__ == "__main__":
    main()
