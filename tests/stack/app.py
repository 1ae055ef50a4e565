"""The watched API for the stack suite: FastAPI + prometheus-fastapi-instrumentator, as a
team would run it, with fault switches. One process per service name.

    python -m tests.stack.app --port P --service S [--dsn DSN] [--broker URL] --log FILE

Routes: ``/health``; ``/api/work`` (the traffic: may enqueue a Celery task, run a SQL
statement); ``/webhook`` (validates an HMAC signature, counts
``webhook_requests_total{result}``); ``/login``; ``/api/v1/status`` (core flow, JSON
``ok``); ``/db/rls`` and ``/db/fk`` (attempt a write the database refuses; the error is
logged to the app's log with its SQLSTATE, as apps do); ``POST /fault``, ``POST /heal``.
A background task makes steady traffic against the app itself, through its middleware.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from prometheus_client import Counter
from prometheus_fastapi_instrumentator import Instrumentator

SECRET = b"stack-webhook-secret"
FAULTS = {
    "error_ratio": 0.0,  # share of /api/work answering 500
    "latency": 0.0,  # seconds added to /api/work
    "slow_sql": False,  # /api/work runs a statement taking 1.2 s
    "health_down": False,  # /health answers 503
    "webhook_invalid": 0.0,  # share of webhooks sent with a bad signature
    "login_down": False,  # /login refuses good credentials (401)
    "core_down": False,  # /api/v1/status answers ok=false
}


class Service:
    """One app instance: its faults, its connections and its routes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.faults: dict[str, Any] = dict(FAULTS)
        self.db: asyncpg.Pool | None = None
        self.celery: Any = None
        self.log = logging.getLogger("app")
        self.webhooks = Counter("webhook_requests_total", "Webhooks received.", ["result"])

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        if self.args.dsn:
            self.db = await asyncpg.create_pool(self.args.dsn, min_size=1, max_size=4)
        if self.args.broker:
            from tests.stack.celery_app import make_celery

            self.celery = make_celery(self.args.broker)
        traffic = asyncio.create_task(self.traffic())
        yield
        traffic.cancel()
        if self.db is not None:
            await self.db.close()

    async def health(self) -> Response:
        return Response(status_code=503 if self.faults["health_down"] else 200)

    async def work(self) -> Response:
        if self.celery is not None:
            self.celery.send_task("stack.work", args=[self.args.service], queue=self.args.service)
        if self.faults["latency"]:
            await asyncio.sleep(self.faults["latency"])
        if self.db is not None:
            slow = self.faults["slow_sql"]
            await self.db.execute("SELECT pg_sleep(1.2)" if slow else "SELECT count(*) FROM orders")
        if random.random() < self.faults["error_ratio"]:
            return Response(status_code=500)
        return Response(status_code=200)

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        given = request.headers.get("X-Signature", "")
        good = hmac.compare_digest(given, _sign(body))
        self.webhooks.labels("valid" if good else "invalid").inc()
        return Response(status_code=204 if good else 400)

    async def login(self) -> Response:
        return Response(status_code=401 if self.faults["login_down"] else 200)

    async def core(self) -> dict[str, bool]:
        return {"ok": not self.faults["core_down"]}

    async def db_write(self, what: str) -> Response:
        sql = {
            # tenant a may only write its own orders (RLS WITH CHECK)
            "rls": "INSERT INTO orders (tenant, customer_id) VALUES ('b', 1)",
            "fk": "INSERT INTO order_items (order_id) VALUES (999999)",
        }[what]
        assert self.db is not None
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL app.tenant = 'a'")
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                self.log.error("ERROR sqlstate=%s %s", exc.sqlstate, exc)
                return Response(status_code=409)
        return Response(status_code=201)

    async def set_fault(self, request: Request) -> dict[str, Any]:
        changes = await request.json()
        self.faults.update({k: v for k, v in changes.items() if k in FAULTS})
        return self.faults

    async def heal(self) -> dict[str, Any]:
        self.faults.update(FAULTS)
        return self.faults

    async def traffic(self) -> None:
        """Steady requests against this app; each on its own (a slow one blocks none)."""
        base = f"http://127.0.0.1:{self.args.port}"
        tasks: set[asyncio.Task[Any]] = set()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await asyncio.sleep(0.5)
            for n in itertools.count(1):
                task = asyncio.create_task(self._request(client, n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(1 / self.args.rps)

    async def _request(self, client: httpx.AsyncClient, n: int) -> None:
        with contextlib.suppress(httpx.HTTPError):
            if n % 3:
                await client.get("/api/work")
                return
            # One request in three is a webhook delivery.
            body = f'{{"n": {n}}}'.encode()
            bad = random.random() < self.faults["webhook_invalid"]
            signature = "0" * 64 if bad else _sign(body)
            await client.post("/webhook", content=body, headers={"X-Signature": signature})


def _sign(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def build(args: argparse.Namespace) -> FastAPI:
    """The FastAPI app, instrumented the way the instrumentator's README says."""
    svc = Service(args)
    app = FastAPI(lifespan=svc.lifespan)
    # /health is probed, not traffic: teams leave it (and /metrics) out of the metrics.
    excluded = ["/metrics", "/health", "/fault", "/heal"]
    Instrumentator(excluded_handlers=excluded).instrument(app).expose(app)
    app.get("/health")(svc.health)
    app.get("/api/work")(svc.work)
    app.post("/webhook")(svc.webhook)
    app.get("/login")(svc.login)
    app.get("/api/v1/status")(svc.core)
    app.post("/db/{what}")(svc.db_write)
    app.post("/fault")(svc.set_fault)
    app.post("/heal")(svc.heal)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--dsn")
    parser.add_argument("--broker")
    parser.add_argument("--log", required=True)
    parser.add_argument("--rps", type=float, default=10)
    args = parser.parse_args()
    logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(message)s")
    uvicorn.run(build(args), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
