"""A small fault-injectable web app: the thing the watchdog watches in demos and tests.

    python examples/demoapp.py --port 8081 [--service demo] [--rps 50]

It makes its own traffic (``--rps`` requests a second, recorded every 100 ms) so its
metrics move without a load generator. Errors are deterministic: with an error ratio
of 0.2, exactly one request in five fails (fractions carry over between batches).

    GET  /metrics          Prometheus metrics (own registry)
    GET  /health           200 {"status": "ok", "checks": {"db": true}}, 503 when health_down
    GET  /api/work         a real request, counted, 500 per the error ratio
    POST /fault            {"error_ratio", "latency_seconds", "health_down", "rollback_status",
                            "external"}
    POST /rollback         heals every fault (unless rollback_status says to fail, or the
                           faults are ``external``: not the deploy's doing, they stay)
    GET  /rollback/calls   {"count": n, "calls": [{"at", "body", "headers", "version", "status"}]}
    GET  /state            faults, version and request totals
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

# prometheus-fastapi-instrumentator's default `latency_highr_buckets`: le="2.0" is what
# the judged p95 rule (rules/api.yml) counts as fast
BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5,
    10, 30, 60,
)  # fmt: skip
TICK = 0.1
ROUTE = "/api/work"


@dataclass
class Faults:
    error_ratio: float = 0.0
    latency_seconds: float = 0.05
    health_down: bool = False
    rollback_status: int = 200
    external: bool = False  # the faults are not the deploy's: a rollback leaves them in place


def validate_faults(data: Any) -> dict[str, Any]:
    """Check a /fault body; raises ValueError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    checks: dict[str, Callable[[Any], bool]] = {
        "error_ratio": lambda v: _is_num(v) and 0.0 <= v <= 1.0,
        "latency_seconds": lambda v: _is_num(v) and 0.0 <= v <= 60.0,
        "health_down": lambda v: isinstance(v, bool),
        "rollback_status": lambda v: type(v) is int and 100 <= v <= 599,
        "external": lambda v: isinstance(v, bool),
    }
    for key, value in data.items():
        if key not in checks:
            raise ValueError(f"unknown fault {key!r}; known: {', '.join(checks)}")
        if not checks[key](value):
            raise ValueError(f"bad value for {key}: {value!r}")
    return data


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass
class Demo:
    """All the app's state: faults, metrics, rollback calls. One per process."""

    service: str
    rps: float
    version: str
    base_latency: float
    faults: Faults = field(default_factory=Faults)
    calls: list[dict[str, Any]] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    totals: dict[str, int] = field(default_factory=lambda: {"200": 0, "500": 0})
    _error_carry: float = 0.0

    def __post_init__(self) -> None:
        self.faults.latency_seconds = self.base_latency
        self.requests = Counter(
            "http_requests_total", "Requests served.",
            ["service", "method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.duration = Histogram(
            "http_request_duration_highr_seconds", "Request latency (the instrumentator's name).",
            ["service", "route"], buckets=BUCKETS, registry=self.registry,
        )  # fmt: skip
        for status in ("200", "500"):  # both series exist from the start: ratios are 0, not empty
            self.requests.labels(self.service, "GET", ROUTE, status)
        self.duration.labels(self.service, ROUTE)

    def record(self, n: int) -> int:
        """Count ``n`` requests; returns how many of them failed (deterministically)."""
        self._error_carry += n * self.faults.error_ratio
        errors = min(n, int(self._error_carry + 1e-9))
        self._error_carry -= errors
        for status, count in (("200", n - errors), ("500", errors)):
            self.requests.labels(self.service, "GET", ROUTE, status).inc(count)
            self.totals[status] += count
        hist = self.duration.labels(self.service, ROUTE)
        for _ in range(n):
            hist.observe(self.faults.latency_seconds)
        return errors

    def set_faults(self, changes: dict[str, Any]) -> None:
        """Apply a partial fault update."""
        for key, value in changes.items():
            setattr(self.faults, key, float(value) if key.endswith(("ratio", "seconds")) else value)
        self._error_carry = 0.0

    def heal(self) -> None:
        """Reset every fault."""
        self.faults = Faults(latency_seconds=self.base_latency)
        self._error_carry = 0.0

    def state(self) -> dict[str, Any]:
        """What /state shows."""
        return {
            "service": self.service,
            "version": self.version,
            "faults": asdict(self.faults),
            "requests": {"ok": self.totals["200"], "errors": self.totals["500"]},
            "rollback_calls": len(self.calls),
        }


DEMO = web.AppKey("demo", Demo)


async def traffic(demo: Demo) -> None:
    """Record ``rps`` synthetic requests a second, in batches every TICK."""
    owed = 0.0
    while True:
        await asyncio.sleep(TICK)
        owed += demo.rps * TICK
        batch = int(owed + 1e-9)
        owed -= batch
        demo.record(batch)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[DEMO].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health(request: web.Request) -> web.Response:
    if request.app[DEMO].faults.health_down:
        return web.json_response({"status": "down", "checks": {"db": False}}, status=503)
    return web.json_response({"status": "ok", "checks": {"db": True}})


async def work(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    await asyncio.sleep(demo.faults.latency_seconds)
    if demo.record(1):
        return web.json_response({"error": "injected failure"}, status=500)
    return web.json_response({"ok": True})


async def fault(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    try:
        changes = validate_faults(await request.json())
    except ValueError as exc:  # also a body that is not JSON
        return web.json_response({"error": str(exc)}, status=400)
    demo.set_faults(changes)
    return web.json_response(demo.state())


async def rollback(request: web.Request) -> web.Response:
    demo = request.app[DEMO]
    text = await request.text()
    try:
        body: Any = await request.json() if text else None
    except ValueError:
        body = text
    status = demo.faults.rollback_status
    version = body.get("version") if isinstance(body, dict) else None
    demo.calls.append(
        {"at": time.time(), "body": body, "headers": dict(request.headers),
         "version": version, "status": status}
    )  # fmt: skip
    if status >= 300:
        return web.json_response({"rolled_back": False, "error": "injected"}, status=status)
    if not demo.faults.external:
        demo.heal()
    if version:
        demo.version = str(version)
    return web.json_response({"rolled_back": True}, status=status)


async def rollback_calls(request: web.Request) -> web.Response:
    calls = request.app[DEMO].calls
    return web.json_response({"count": len(calls), "calls": calls})


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[DEMO].state())


def make_app(demo: Demo) -> web.Application:
    """The aiohttp application around ``demo``."""
    app = web.Application()
    app[DEMO] = demo

    async def background(app: web.Application) -> Any:
        task = asyncio.create_task(traffic(demo))
        yield
        task.cancel()

    app.cleanup_ctx.append(background)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get(ROUTE, work)
    app.router.add_post("/fault", fault)
    app.router.add_post("/rollback", rollback)
    app.router.add_get("/rollback/calls", rollback_calls)
    app.router.add_get("/state", state)
    return app


async def serve(args: argparse.Namespace) -> None:
    demo = Demo(args.service, args.rps, args.app_version, args.latency)
    runner = web.AppRunner(make_app(demo), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"listening on {args.port}", flush=True)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--service", default="demo")
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--latency", type=float, default=0.05, help="healthy latency, seconds")
    parser.add_argument("--app-version", default="v2", help="the version /state reports")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
