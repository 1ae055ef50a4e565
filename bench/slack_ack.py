"""How fast ``/slack/interactions`` answers a button click while the watchdog is busy.

Slack gives up on an interaction after 3 s; the target is p99 <= 300 ms with 50 rule
checks in flight. The real App (engine, scheduler, SQLite store, outbox, delivery
worker, the watchdog's Slack Web API client posting to a local fake Slack) watches one deployment
with R http-probe rules. Two scenarios, measured side by side in one run:

* idle: the probed /health answers at once and rules run every hour (nothing in flight);
* loaded: /health takes 500 ms and rules run every 100 ms, so all R checks are always
  in flight.

N signed "Acknowledge" clicks are sent one after another; each answer's latency is
measured client-side (the acknowledgement work then runs in the background, journaling
and updating the Slack message, adding to the load).

    python -m bench.slack_ack --rules 50 --clicks 300
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from tests.servers.slack import FakeSlack, interaction, signed_headers
from watchdog.app import App
from watchdog.foundation.model import Deployment
from watchdog.plumbing.logs import configure_logging
from watchdog.settings import Settings

SECRET = "bench-signing-secret-0123456789"
USER = "U0ONCALL"


def rules_yaml(count: int, interval: str) -> str:
    lines = ["groups:", "  - name: bench", f"    interval: {interval}", "    rules:"]
    for i in range(count):
        lines += [
            f"      - name: probe-{i}",
            "        source: http",
            "        url: http://127.0.0.1:{{ labels.port }}/health",
            "        timeout: 2s",
            "        action: notify",
        ]
    return "\n".join(lines) + "\n"


async def health_server(delay: float) -> tuple[web.AppRunner, int]:
    async def health(_: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/health", health)
    runner, url = await serve(app)
    return runner, int(url.rsplit(":", 1)[1])


async def scenario(rules: int, clicks: int, loaded: bool) -> tuple[list[float], float]:
    """Latencies (s) of ``clicks`` acknowledgements, and the mean checks in flight."""
    health, port = await health_server(0.5 if loaded else 0.0)
    slack = FakeSlack()
    await slack.start()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(rules_yaml(rules, "100ms" if loaded else "1h"))
        settings = Settings(
            rules=[path],
            store_url=SecretStr(f"sqlite:///{tmp}/bench.db"),
            listen_port=0,
            tick=0.1,
            notify={
                "slack_bot_token": slack.token,
                "slack_signing_secret": SECRET,
                "slack_api_url": slack.api_url,
                "oncall_ids": [USER],
                "escalate_after": None,
            },
        )
        app = App(settings)
        parts = await app.start()
        try:
            d = Deployment("bench", "prod", "v2", "v1", labels={"port": str(port)})
            window = await parts.windows.open_window(d, window_seconds=3600, actor="bench")
            await asyncio.sleep(1.0)  # let the checks get going
            return await _click(app, window.id, clicks, parts.engine)
        finally:
            await app.stop()
            await slack.stop()
            await health.cleanup()


async def _click(
    app: App, window_id: str, clicks: int, engine: object
) -> tuple[list[float], float]:
    latencies: list[float] = []
    inflight: list[int] = []
    async with httpx.AsyncClient(base_url=app.url, timeout=10) as client:
        for _ in range(clicks):
            body = interaction(USER, "ack", window_id)
            headers = signed_headers(SECRET, body)
            started = time.perf_counter()
            response = await client.post("/slack/interactions", content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            inflight.append(len(getattr(engine, "_inflight", {})))
            await asyncio.sleep(0.01)
    return latencies, statistics.fmean(inflight)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(rules: int, clicks: int) -> str:
    idle = asyncio.run(scenario(rules, clicks, loaded=False))
    busy = asyncio.run(scenario(rules, clicks, loaded=True))
    rows = [
        "| scenario | checks in flight (mean) | clicks | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, (lat, flying) in (("idle", idle), (f"{rules} checks in flight", busy)):
        rows.append(
            f"| {name} | {flying:.1f} | {len(lat)} | {pct(lat, 0.5) * 1000:.1f} | "
            f"{pct(lat, 0.99) * 1000:.1f} | {max(lat) * 1000:.1f} |"
        )
    ratio = pct(busy[0], 0.99) / pct(idle[0], 0.99)
    rows.append("")
    rows.append(f"p99 loaded / idle: {ratio:.2f}x")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--clicks", type=int, default=300)
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    # A busy loop makes APScheduler skip ticks (by design: max_instances=1); not news here.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    out = table(args.rules, args.clicks)
    print(out)
    return out


if __name__ == "__main__":
    main()
