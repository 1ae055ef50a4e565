"""CPU per outbound request at the HTTP edge: httpx's whole client path beside the edge's.

    python -m bench.http_edge --requests 5000 --rounds 3

``--requests`` GETs of ``/api/v1/query``, each with a PromQL query and a time as the
``prometheus`` source sends them, one after the other through the app's client
(``httpx.AsyncClient`` over ``KeepAliveTransport``) to a fast local stub Prometheus
(``bench/stub_prometheus.py``, on its own thread), each answer read as the edge reads it.
Two paths, taking turns in every round:

* ``build_request + send``: how the edge sent until now, ``client.build_request`` then
  ``client.send`` (the URL parsed again, auth, redirect and cookie handling per request);
* ``httpedge.fetch``: the edge now (``plumbing/outbound.py``).

Both again over ``httpx.MockTransport`` (answers made in memory: the edge without a
socket, as the tests see it). CPU is the event loop thread's CPU time per request (the
stub's thread not counted), the best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

from bench.stub_prometheus import StubPrometheus
from watchdog.plumbing import httpedge
from watchdog.plumbing.keepalive import KeepAliveTransport

CAP = 1 << 20
TIMEOUT = 10.0
Send = Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[bytes]]


async def old_path(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> bytes:
    """The edge's exchange as it was: ``client.build_request`` + ``client.send``."""
    request = client.build_request("GET", url, params=params, headers={}, timeout=TIMEOUT)
    request.headers["Accept-Encoding"] = httpedge.ACCEPT_ENCODING
    async with asyncio.timeout(TIMEOUT):
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            body, _ = await httpedge.read_bounded(response, CAP, "bench")
        finally:
            await response.aclose()
    return body


async def edge_path(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> bytes:
    """The edge now."""
    answer = await httpedge.fetch(
        client, "GET", url, what="bench", timeout=TIMEOUT, max_bytes=CAP, params=params,
        headers={},
    )  # fmt: skip
    return answer.body


PATHS: dict[str, Send] = {"build_request + send": old_path, "httpedge.fetch": edge_path}


def queries(n: int) -> list[dict[str, str]]:
    """What the ``prometheus`` source asks: 10 rules' queries over many services."""
    return [
        {
            "query": f'sum(rate(bench_{i % 10}_total{{service="svc-{i % 1000}"}}[5m]))',
            "time": f"{1765000000 + i * 0.015:.3f}",
        }
        for i in range(n)
    ]


async def cpu_per_request(
    client: httpx.AsyncClient, send: Send, url: str, asks: list[dict[str, str]]
) -> float:
    """Seconds of this thread's CPU per request (after a few to warm up)."""
    for params in asks[:5]:
        await send(client, url, params)
    started = time.thread_time()
    for params in asks:
        await send(client, url, params)
    return (time.thread_time() - started) / len(asks)


def mock_client() -> httpx.AsyncClient:
    """Answers made in memory, as the tests' ``MockTransport`` makes them."""
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body.encode(), headers={"Content-Type": "x"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def measure(stub_url: str, n: int, rounds: int) -> dict[tuple[str, str], float]:
    """Best CPU per request for each (transport, path)."""
    asks = queries(n)
    keepalive = KeepAliveTransport([stub_url], httpx.AsyncHTTPTransport())
    clients = {
        "KeepAliveTransport, loopback": httpx.AsyncClient(transport=keepalive),
        "MockTransport, in memory": mock_client(),
    }
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for transport, client in clients.items():
            for name, send in PATHS.items():
                took = await cpu_per_request(client, send, stub_url + "/api/v1/query", asks)
                key = (transport, name)
                best[key] = min(best.get(key, took), took)
    for client in clients.values():
        await client.aclose()
    return best


def table(best: dict[tuple[str, str], float], n: int) -> str:
    """One row per (transport, path), the change against httpx's path beside it."""
    lines = [
        "| transport | path | requests | CPU per request | vs build_request + send |",
        "|---|---|---:|---:|---:|",
    ]
    for (transport, name), took in best.items():
        base = best[(transport, "build_request + send")]
        change = "" if took == base else f"{(took - base) / base:+.0%}"
        lines.append(f"| {transport} | `{name}` | {n} | {took * 1e6:.0f} µs | {change} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> str:
    """Measure and return a markdown table."""
    p = argparse.ArgumentParser(prog="python -m bench.http_edge", description=__doc__)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    stub = StubPrometheus().start()
    try:
        best = asyncio.run(measure(stub.url, args.requests, args.rounds))
    finally:
        stub.stop()
    out = table(best, args.requests)
    print(out)
    return out


if __name__ == "__main__":
    main()
