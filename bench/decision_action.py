"""Decision to action: from the evaluation that fires to the rollback request's first byte.

The real App (APScheduler ticking every 100 ms, SQLite store, journal, outbox) watches
one window at a time; its single rule is an HTTP probe of a local /health that always
answers 500, so its first evaluation fires. The rollback plan posts to a raw TCP
endpoint in another thread that notes when the first byte of the request arrives.
The evaluation's instant is the ``rule_firing`` journal entry's ``at`` (taken right
after the sample, before the pipeline: Gate, Dedup, Grace, Fence, Act). Windows are
opened one after another, each for its own service, so every trial is one decision.

    python -m bench.decision_action --trials 200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socketserver
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from watchdog.app import App
from watchdog.foundation.model import Deployment, EventKind
from watchdog.plumbing.logs import configure_logging
from watchdog.settings import Settings

RULES = """groups:
  - name: bench
    interval: 100ms
    rules:
      - name: health
        source: http
        url: {health}/health
        timeout: 2s
        action: rollback
"""


class FirstByte(socketserver.ThreadingTCPServer):
    """Answers any HTTP request 200; ``first[path]`` = when its first byte arrived."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.first: dict[str, float] = {}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(65536)
        arrived = time.time()
        while b"\r\n\r\n" not in data:
            more = self.request.recv(65536)
            if not more:
                return
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            body += self.request.recv(65536)
        path = head.split(b" ")[1].decode()
        server = self.server
        assert isinstance(server, FirstByte)
        server.first.setdefault(path, arrived)
        reply = b'{"ok": true}'
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(reply)).encode() + b"\r\n\r\n" + reply
        )


async def trials(count: int) -> list[float]:
    """Seconds from the firing evaluation to the request's first byte, per trial."""
    target = FirstByte()
    threading.Thread(target=target.serve_forever, daemon=True).start()
    health = web.Application()
    health.router.add_get("/health", _failing)
    runner, health_url = await serve(health)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = App(_settings(Path(tmp), health_url, target.url))
            parts = await app.start()
            try:
                return [await _one(parts, target, i) for i in range(count)]
            finally:
                await app.stop()
    finally:
        await runner.cleanup()
        target.shutdown()
        target.server_close()


async def _failing(_: web.Request) -> web.Response:
    return web.json_response({"ok": False}, status=500)


def _settings(home: Path, health: str, target: str) -> Settings:
    rules = home / "rules.yml"
    rules.write_text(RULES.format(health=health))
    plan = {
        "steps": [
            {
                "name": "call",
                "kind": "http",
                "method": "POST",
                "url": target + "/rollback/{{ service }}",
                "json": {"v": "{{ version }}"},
                "timeout": "5s",
                "retries": 0,
            }
        ]
    }
    return Settings(
        rules=[rules],
        store_url=SecretStr(f"sqlite:///{home}/bench.db"),
        listen_port=0,
        tick=0.1,
        plans={"rollback": plan},
        default_plan="rollback",
        http_allowed_hosts=["127.0.0.1"],
        log_level="warning",
    )


async def _one(parts: object, target: FirstByte, i: int) -> float:
    windows = getattr(parts, "windows")  # noqa: B009 (Parts is a plain record)
    store = getattr(parts, "store")  # noqa: B009
    d = Deployment(f"svc{i}", "prod", "v2", "v1")
    window = await windows.open_window(d, window_seconds=3600, actor="bench")
    deadline = time.monotonic() + 30
    while f"/rollback/svc{i}" not in target.first:
        if time.monotonic() > deadline:
            raise TimeoutError(f"trial {i}: no rollback request")
        await asyncio.sleep(0.005)
    events = await store.list_events(window.id)
    fired = min(e.at for e in events if e.kind is EventKind.RULE_FIRING)
    return target.first[f"/rollback/svc{i}"] - fired


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    lat = asyncio.run(trials(args.trials))
    out = "\n".join(
        [
            "| trials | p50 | p99 | max | target p99 |",
            "|---:|---:|---:|---:|---:|",
            f"| {len(lat)} | {pct(lat, 0.5) * 1000:.1f} ms | {pct(lat, 0.99) * 1000:.1f} ms "
            f"| {max(lat) * 1000:.1f} ms | ≤ 100 ms |",
        ]
    )
    print(out)
    return out


if __name__ == "__main__":
    main()
