"""The Alertmanager receiver's latency and throughput by payload size.

The real App (SQLite file store, ``rules/alerts.yml``, 10 open windows, one of which
the alerts match, so every delivery also wakes an evaluation) behind its real socket;
an httpx client posts Alertmanager webhook payloads of 1, 50, 500 and 3,000 alerts, one
at a time. The first delivery of a size records new alerts (and wakes the matching
window's evaluation); the rest repeat the same group, which is what Alertmanager sends
every ``group_interval`` and from every HA peer. The heap built at startup is frozen
out of the garbage collector as ``watchdog serve`` does. Reports the body size, the first
delivery's latency, p50 and p99 over the repeats, and alerts taken in per second.

    python -m bench.alertmanager_receiver --sizes 1,50,500,3000 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from watchdog.app import App
from watchdog.plumbing.logs import configure_logging
from watchdog.process import freeze_startup_heap
from watchdog.settings import Settings

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-am-token-0123456789"
API_TOKEN = "bench-api-token-0123456789"


def body(size: int, service: str) -> bytes:
    """A webhook payload (version 4) carrying ``size`` alerts of one group."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    alerts = []
    for i in range(size):
        labels = {
            "alertname": "APIHigh5xxRatio",
            "service": service,
            "environment": "prod",
            "instance": f"10.0.{i // 250}.{i % 250}:8080",
            "severity": "critical",
            "rollback": "true",
        }
        fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
        alerts.append(
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{service}: 5xx above 5% on instance {i}"},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28...%29",
                "fingerprint": fp,
            }
        )
    payload = {
        "version": "4",
        "groupKey": '{}/{rollback="true"}:{alertname="APIHigh5xxRatio"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rollback-watchdog",
        "groupLabels": {"alertname": "APIHigh5xxRatio"},
        "commonLabels": {"alertname": "APIHigh5xxRatio", "service": service},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }
    return json.dumps(payload).encode()


async def measure(size: int, requests: int, directory: Path) -> dict[str, float]:
    settings = Settings(
        rules=[REPO / "rules" / "alerts.yml"],
        store_url=SecretStr(f"sqlite:///{directory / f'bench-{size}.db'}"),
        listen_port=0,
        api_token=SecretStr(API_TOKEN),
        alertmanager_token=SecretStr(TOKEN),
        log_level="warning",
    )
    app = App(settings)
    await app.start(schedule=False)
    freeze_startup_heap()  # as `watchdog serve` does
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=app.url, timeout=60) as client:
            api = {"Authorization": f"Bearer {API_TOKEN}"}
            for i in range(10):
                deploy = {"service": f"svc{i}", "environment": "prod", "version": "v2"}
                (
                    await client.post("/api/v1/deployments", json=deploy, headers=api)
                ).raise_for_status()
            raw = body(size, "svc0")
            for _ in range(requests + 1):
                started = time.perf_counter()
                resp = await client.post("/api/v1/alertmanager", content=raw, headers=headers)
                latencies.append(time.perf_counter() - started)
                resp.raise_for_status()
    finally:
        await app.stop()
    first, latencies = latencies[0], sorted(latencies[1:])
    total = sum(latencies)
    return {
        "alerts": size,
        "bytes": len(raw),
        "first": first,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "per_second": size * len(latencies) / total,
        "requests_per_second": len(latencies) / total,
    }


def run(sizes: list[int], requests: int) -> list[dict[str, float]]:
    """Measure every size in one run, side by side."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            rows.append(asyncio.run(measure(size, requests, Path(tmp))))
    return rows


def table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| alerts per payload | body | first delivery | p50 | p99 | deliveries/s | alerts/s "
        "| p99 vs 1 alert |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = rows[0]["p99"]
    for r in rows:
        lines.append(
            f"| {int(r['alerts'])} | {r['bytes'] / 1024:.0f} KiB | {r['first'] * 1000:.1f} ms "
            f"| {r['p50'] * 1000:.1f} ms "
            f"| {r['p99'] * 1000:.1f} ms | {r['requests_per_second']:.0f} "
            f"| {r['per_second']:.0f} | {r['p99'] / base:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1,50,500,3000")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    out = table(run([int(s) for s in args.sizes.split(",")], args.requests))
    print(out)
    return out


if __name__ == "__main__":
    main()
