"""A local HTTP endpoint that records when each POST arrives (rollback target, webhooks).

A ``ThreadingHTTPServer`` in a background thread, so synchronous benchmark scripts can
use it next to real processes. ``arrivals`` holds ``(time, path, parsed JSON body)``;
the time is taken when the request line and headers have been read.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Recorder:
    """Use as a context manager; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, Any]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with recorder._lock:
                    recorder.arrivals.append((arrived, self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def first(self, path: str, match: Any, after: float = 0.0) -> float | None:
        """When the first POST to ``path`` after ``after`` that ``match(body)`` accepts came."""
        with self._lock:
            found = [a for a, p, b in self.arrivals if p == path and a >= after and match(b)]
        return min(found) if found else None
