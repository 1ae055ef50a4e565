"""One Prometheus sample of a query matching N series, with and without the answer caps.

A real Prometheus serves N series of ``wd_big`` backfilled with ``promtool tsdb
create-blocks-from openmetrics``; the real ``prometheus`` source samples ``wd_big`` once
with the default caps (``prometheus_max_series``, ``prometheus_max_response_bytes``) and
once with both lifted. Reported: the sample's kind, its wall time, the longest the event
loop went without running a 10 ms ticker, and the process's peak RSS afterwards (each
case in its own child process).

    python -m bench.prometheus_caps --series 200000
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


async def _lagging(stop: asyncio.Event) -> float:
    worst, last = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        worst, last = max(worst, now - last - 0.01), now
    return worst


async def _sample(url: str, at: float, capped: bool) -> dict[str, object]:
    lifted = {} if capped else {"max_series": 10**7, "max_bytes": 1 << 31}
    source = PrometheusSource(url, timeout=120, retries=0, concurrency=1, **lifted)
    rule = PrometheusRule.model_validate(
        {"name": "big", "source": "prometheus", "query": "wd_big", "threshold": "> 0"}
    )
    stop = asyncio.Event()
    lag = asyncio.create_task(_lagging(stop))
    started = time.monotonic()
    sample = await source.sample(rule, SampleContext("bench", {}, at))
    took = time.monotonic() - started
    stop.set()
    await source.close()
    return {
        "caps": "default" if capped else "lifted",
        "sample": sample.kind.value,
        "seconds": round(took, 2),
        "loop_gap": round(await lag, 2),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _blocks(tmp: Path, series: int) -> tuple[Path, float]:
    at = float(int(time.time()) - 600)
    source = tmp / "big.om"
    with source.open("w") as f:
        f.write("# TYPE wd_big gauge\n")
        for i in range(series):
            f.write(f'wd_big{{pod="pod-{i:07d}",service="big"}} 1 {at:.0f}\n')
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
    parser.add_argument("--child", nargs=3, metavar=("URL", "AT", "CAPPED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, at, capped = args.child
        print(json.dumps(asyncio.run(_sample(url, float(at), capped == "1"))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, at = _blocks(Path(tmp), args.series)
        with start_prometheus(Path(tmp), [], data=data) as prom:
            print(f"{args.series:,} series of wd_big on a real Prometheus")
            # Warm it up (blocks mmapped, postings read) so neither case pays for that.
            params = {"query": "count(wd_big)", "time": repr(at)}
            httpx.get(f"{prom.url}/api/v1/query", params=params, timeout=60).raise_for_status()
            for capped in ("1", "0"):
                argv = [sys.executable, "-m", "bench.prometheus_caps", "--child"]
                out = subprocess.run(
                    [*argv, prom.url, repr(at), capped], capture_output=True, text=True, check=True
                )
                print(out.stdout.strip())


if __name__ == "__main__":
    main()
