"""Fixtures: the fault-injectable demo app and a real Prometheus scraping it.

Helpers (context managers, usable from any fixture or test):

* ``start_demo_app(tmp_path, service="demo", rps=50)`` → :class:`DemoApp`
* ``start_prometheus(tmp_path, targets, scrape_interval="1s", extra_config="")``
  → :class:`PrometheusServer`
* ``wait_for_query(prom_url, query, predicate, timeout)`` → the values once
  ``predicate(values)`` holds

Fixture: ``prom_stack`` (module scope) → :class:`PromStack`, a demo app plus a
Prometheus scraping it every second, already holding its first samples.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.common import free_port, require_binary, running, stop

REPO = Path(__file__).resolve().parents[2]
DEMOAPP = REPO / "examples" / "demoapp.py"


@dataclass
class DemoApp:
    """A running ``examples/demoapp.py``; the methods drive its HTTP control API."""

    port: int
    service: str
    base_latency: float = 0.05

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus scrape config."""
        return f"127.0.0.1:{self.port}"

    def set_fault(self, **faults: Any) -> dict[str, Any]:
        """error_ratio=, latency_seconds=, health_down=, rollback_status= (partial)."""
        response = httpx.post(f"{self.url}/fault", json=faults, timeout=5)
        response.raise_for_status()
        return dict(response.json())

    def heal(self) -> None:
        """Clear every fault without recording a rollback call."""
        self.set_fault(
            error_ratio=0.0,
            latency_seconds=self.base_latency,
            health_down=False,
            rollback_status=200,
        )

    def rollback_calls(self) -> list[dict[str, Any]]:
        """Every POST /rollback so far: ``at``, ``body``, ``headers``, ``version``, ``status``."""
        response = httpx.get(f"{self.url}/rollback/calls", timeout=5)
        response.raise_for_status()
        return list(response.json()["calls"])

    def state(self) -> dict[str, Any]:
        """GET /state: faults, version, request totals."""
        return dict(httpx.get(f"{self.url}/state", timeout=5).json())


@dataclass
class PrometheusServer:
    """A running Prometheus; ``stop()`` ends it early (e.g. in the middle of a window)."""

    port: int
    proc: subprocess.Popen[bytes]
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class PromStack:
    """The demo app and the Prometheus scraping it."""

    demo: DemoApp
    prometheus: PrometheusServer

    @property
    def prom_url(self) -> str:
        return self.prometheus.url


@contextlib.contextmanager
def start_demo_app(
    tmp_path: Path, service: str = "demo", rps: float = 50, latency: float = 0.05
) -> Iterator[DemoApp]:
    """Run the demo app on a free port until the block ends."""
    port = free_port()
    argv = [sys.executable, str(DEMOAPP), "--port", str(port), "--service", service]
    argv += ["--rps", str(rps), "--latency", str(latency)]
    with running(argv, tmp_path / f"demoapp-{port}.log", port, cwd=REPO):
        yield DemoApp(port, service, latency)


def prometheus_config(targets: list[str], scrape_interval: str, extra_config: str = "") -> str:
    """A prometheus.yml scraping ``targets`` (``host:port`` or URLs) as job ``demo``.

    ``extra_config`` is appended verbatim: top-level keys (``rule_files:``,
    ``alerting:``) or more ``  - job_name:`` items continuing ``scrape_configs``.
    """
    hosts = [t.split("://", 1)[-1].rstrip("/") for t in targets]
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  scrape_timeout: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
        "  - job_name: demo",
        "    static_configs:",
        f"      - targets: {json.dumps(hosts)}",
    ]
    return "\n".join(lines) + "\n" + extra_config + "\n"


@contextlib.contextmanager
def start_prometheus(
    tmp_path: Path, targets: list[str], scrape_interval: str = "1s", extra_config: str = ""
) -> Iterator[PrometheusServer]:
    """Run the real Prometheus on a free port until the block ends; waits for /-/ready."""
    binary = require_binary("prometheus", "/usr/bin/prometheus")
    port = free_port()
    home = tmp_path / f"prometheus-{port}"
    home.mkdir(parents=True)
    config = home / "prometheus.yml"
    config.write_text(prometheus_config(targets, scrape_interval, extra_config))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    with running(argv, home / "prometheus.log", port, timeout=60) as proc:
        server = PrometheusServer(port, proc, home)
        _wait_ready(server, timeout=60)
        yield server


def _wait_ready(server: PrometheusServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = (server.home / "prometheus.log").read_text()[-3000:]
            raise RuntimeError(f"prometheus exited with {server.proc.returncode}:\n{log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"prometheus on {server.url} not ready within {timeout}s")


def query_values(prom_url: str, query: str) -> list[float]:
    """The numbers an instant query returns now (vector values or the scalar)."""
    response = httpx.get(f"{prom_url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    data = response.json()["data"]
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    return [float(e["value"][1]) for e in data["result"]]


def wait_for_query(
    prom_url: str,
    query: str,
    predicate: Callable[[list[float]], bool] = bool,
    timeout: float = 30.0,
    interval: float = 0.25,
) -> list[float]:
    """Poll ``query`` until ``predicate(values)`` holds; returns those values.

    The default predicate waits until the query returns anything at all.
    """
    deadline = time.monotonic() + timeout
    values: list[float] = []
    while True:
        with contextlib.suppress(httpx.HTTPError):
            values = query_values(prom_url, query)
            if predicate(values):
                return values
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{query!r} did not satisfy the predicate in {timeout}s: {values}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def prom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """Demo app (service "demo", 50 rps) + Prometheus scraping it every second."""
    tmp = tmp_path_factory.mktemp("prom_stack")
    with start_demo_app(tmp) as demo, start_prometheus(tmp, [demo.target]) as prom:
        wait_for_query(prom.url, 'up{job="demo"}', lambda v: v == [1.0], timeout=30)
        yield PromStack(demo, prom)
