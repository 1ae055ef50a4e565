"""The rest of the watched stack, for Prometheus to scrape: what the Celery exporter,
cAdvisor and an app's webhook handler export, plus a login page and a core API call.

The metric names and labels are the ones rules/ expects (Flower's
``flower_events_total{type="task-succeeded"|"task-failed"}``, cAdvisor's
``container_oom_events_total``, ``webhook_requests_total{result}``), already carrying
``service`` as the relabelling described in those files would add. The real exporters
are proven in tests/stack/. A thread makes steady traffic every 100 ms; the
fault flags add failures to it.

    with start_stack_app() as app:
        app.faults.celery_failing = True
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

SERVICE = "demo"


@dataclass
class Faults:
    """What is broken right now."""

    celery_failing: bool = False
    webhook_invalid: bool = False
    login_down: bool = False
    core_down: bool = False


@dataclass
class StackApp:
    """The running server: its port, counters and fault flags."""

    port: int = 0
    faults: Faults = field(default_factory=Faults)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "flower_events", "Events.", ["task", "type", "worker", "service"], registry=r
        )
        self.oom = Counter("container_oom_events", "OOM kills.", ["name", "service"], registry=r)
        self.webhooks = Counter("webhook_requests", "Webhooks.", ["service", "result"], registry=r)
        self.oom.labels("api", SERVICE)  # exported at 0 before any kill

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def traffic(self) -> None:
        """One 100 ms batch of tasks and webhooks."""
        # As Flower and client libraries do, failure series appear with the first failure.
        self.events.labels("send_mail", "task-succeeded", "celery@w1", SERVICE).inc(10)
        self.webhooks.labels(SERVICE, "valid").inc(10)
        if self.faults.celery_failing:
            self.events.labels("send_mail", "task-failed", "celery@w1", SERVICE).inc(50)
        if self.faults.webhook_invalid:
            self.webhooks.labels(SERVICE, "invalid").inc(50)

    def oom_kill(self) -> None:
        """The kernel OOM-killed a container."""
        self.oom.labels("api", SERVICE).inc()


def _handler(app: StackApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(app.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/login":
                status = 500 if app.faults.login_down else 200
                self._send(status, b"<form>login</form>", "text/html")
            elif self.path == "/api/v1/status":
                body = json.dumps({"ok": not app.faults.core_down}).encode()
                self._send(200, body, "application/json")
            else:
                self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@contextlib.contextmanager
def start_stack_app() -> Iterator[StackApp]:
    """Serve on a free loopback port from a thread; traffic runs until the block ends."""
    app = StackApp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(app))
    app.port = server.server_address[1]
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.1):
            app.traffic()

    threads = [threading.Thread(target=server.serve_forever, daemon=True)]
    threads.append(threading.Thread(target=loop, daemon=True))
    for t in threads:
        t.start()
    try:
        yield app
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for t in threads:
            t.join(5)
