"""Real processes for the demo, the tests and the benchmarks: free ports, process
lifetimes, the fault-injectable demo app, a real Prometheus, and ``watchdog serve``.

Nothing here depends on pytest: ``make demo`` and ``bench/`` use it as it is, and the
test fixtures in ``tests/servers/`` wrap it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a process (and its group), killing it if it does not go."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


@contextlib.contextmanager
def running(
    argv: list[str], log: Path, port: int, timeout: float = 30.0, **kw: object
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own process group, wait for ``port``, stop it on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )  # type: ignore[call-overload]
    try:
        try:
            wait_for_port(port, timeout, proc)
        except Exception as exc:
            raise RuntimeError(
                f"{argv[0]} did not start: {exc}\n{log.read_text()[-3000:]}"
            ) from exc
        yield proc
    finally:
        stop(proc)


def find_binary(name: str, *candidates: str) -> str:
    """Path of a server binary, or RuntimeError saying how to install it."""
    for c in (name, *candidates, f"/usr/bin/{name}", f"/usr/sbin/{name}"):
        found = shutil.which(c) or (c if os.path.isabs(c) and os.access(c, os.X_OK) else None)
        if found:
            return found
    raise RuntimeError(f"{name} is not installed: run `make system-deps` (Debian packages)")


REPO = Path(__file__).resolve().parents[1]
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
        """error_ratio=, latency_seconds=, health_down=, rollback_status=, external=
        (partial; ``external`` faults survive a rollback)."""
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
            external=False,
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
    tmp_path: Path,
    service: str = "demo",
    rps: float = 50,
    latency: float = 0.05,
    version: str = "v2",
) -> Iterator[DemoApp]:
    """Run the demo app on a free port until the block ends (``version``: what /state says)."""
    port = free_port()
    argv = [sys.executable, str(DEMOAPP), "--port", str(port), "--service", service]
    argv += ["--rps", str(rps), "--latency", str(latency), "--app-version", version]
    with running(argv, tmp_path / f"demoapp-{port}.log", port, cwd=REPO):
        yield DemoApp(port, service, latency)


def prometheus_config(
    targets: list[str],
    scrape_interval: str,
    extra_config: str = "",
    external_labels: dict[str, str] | None = None,
) -> str:
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
        *([f"  external_labels: {json.dumps(external_labels)}"] if external_labels else []),
        "scrape_configs:",
        "  - job_name: demo",
        "    static_configs:",
        f"      - targets: {json.dumps(hosts)}",
    ]
    return "\n".join(lines) + "\n" + extra_config + "\n"


@contextlib.contextmanager
def start_prometheus(
    tmp_path: Path,
    targets: list[str],
    scrape_interval: str = "1s",
    extra_config: str = "",
    external_labels: dict[str, str] | None = None,
    data: Path | None = None,
) -> Iterator[PrometheusServer]:
    """Run the real Prometheus on a free port until the block ends; waits for /-/ready.

    ``data`` is the TSDB directory (e.g. blocks written by ``promtool tsdb
    create-blocks-from openmetrics``); by default a fresh one in the server's home.
    """
    binary = find_binary("prometheus")
    port = free_port()
    home = tmp_path / f"prometheus-{port}"
    home.mkdir(parents=True)
    config = home / "prometheus.yml"
    config.write_text(prometheus_config(targets, scrape_interval, extra_config, external_labels))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data or home / 'data'}",
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


@dataclass
class WatchdogServer:
    """A running ``watchdog serve`` process and a small client of its API."""

    port: int
    proc: subprocess.Popen[bytes]
    home: Path
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Call the API with the Bearer token."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kw)

    def deploy(self, **body: Any) -> dict[str, Any]:
        """POST /api/v1/deployments; returns the window."""
        response = self.api("POST", "/api/v1/deployments", json=body)
        response.raise_for_status()
        return dict(response.json())

    def window(self, window_id: str) -> dict[str, Any]:
        """GET /api/v1/deployments/ID: the window, its rules and its journal."""
        response = self.api("GET", f"/api/v1/deployments/{window_id}")
        response.raise_for_status()
        return dict(response.json())

    def log(self) -> str:
        """What the process has logged so far."""
        return (self.home / "watchdog.log").read_text(errors="replace")


@contextlib.contextmanager
def start_watchdog(
    home: Path, settings: dict[str, str], *, token: str = "demo-token-0123456789"
) -> Iterator[WatchdogServer]:
    """Run ``python -m watchdog serve`` with ``WATCHDOG_*`` settings until the block ends."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env.update({f"WATCHDOG_{k.upper()}": v for k, v in settings.items()})
    env.update(
        WATCHDOG_LISTEN_PORT=str(port),
        WATCHDOG_API_TOKEN=token,
        WATCHDOG_STORE_URL=settings.get("store_url", f"sqlite:///{home / 'watchdog.db'}"),
        PYTHONUNBUFFERED="1",
    )
    if "config" in settings:
        env["WATCHDOG_CONFIG"] = settings["config"]
    argv = [sys.executable, "-m", "watchdog", "serve"]
    with running(argv, home / "watchdog.log", port, timeout=30, env=env, cwd=REPO) as proc:
        yield WatchdogServer(port, proc, home, token)


@dataclass
class AlertmanagerServer:
    """A running Alertmanager (``prometheus-alertmanager`` from the Debian package)."""

    port: int
    proc: subprocess.Popen[bytes]
    home: Path
    cluster_port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        response.raise_for_status()

    def log(self) -> str:
        return (self.home / "alertmanager.log").read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)


@contextlib.contextmanager
def start_alertmanager(
    tmp_path: Path, config: str, *, cluster: bool = False, peers: Sequence[int] = ()
) -> Iterator[AlertmanagerServer]:
    """Run Alertmanager with ``config`` (YAML text) on a free port until the block ends.

    Clustering is off unless ``cluster`` (then it gossips on its own free port and joins
    the Alertmanagers listening on the cluster ports in ``peers``).
    """
    binary = find_binary("prometheus-alertmanager", "alertmanager")
    port = free_port()
    home = tmp_path / f"alertmanager-{port}"
    home.mkdir(parents=True)
    (home / "alertmanager.yml").write_text(config)
    cluster_port = free_port() if cluster else None
    argv = [
        binary,
        f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    if cluster_port is None:
        argv.append("--cluster.listen-address=")
    else:
        argv.append(f"--cluster.listen-address=127.0.0.1:{cluster_port}")
        argv += [f"--cluster.peer=127.0.0.1:{p}" for p in peers]
    with running(argv, home / "alertmanager.log", port, timeout=60) as proc:
        server = AlertmanagerServer(port, proc, home, cluster_port)
        _wait_http_ready(f"{server.url}/-/ready", proc, home / "alertmanager.log", 60)
        yield server


def _wait_http_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout}s")
