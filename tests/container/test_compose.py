"""compose.yaml brought up for real with podman-compose, on stand-in images.

The registries that serve ``postgres``, ``redis``, ``prom/prometheus`` and
``prom/alertmanager`` cannot be reached here, so stand-ins are built from Debian's
packages (``standins/``: one image whose entrypoint tells the four roles apart and
honours each one's entrypoint, command and environment contract) and tagged with the names compose.yaml uses; the watchdog image
is built from the Dockerfile. The project's files are copied as they are, with only
what an operator sets: ``deploy/watchdog.env`` and ``deploy/alertmanager-token`` with
strong secrets, a 2 s scrape interval, and a fast 5xx rule in ``rules/``. Proven: the
watchdog reaches Prometheus by service name, Alertmanager reaches the watchdog with its
token secret, a fault injected into the stack's app is rolled back exactly once, and
``down`` leaves nothing running.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.containers import Podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]
REPO = Path(__file__).resolve().parents[2]
# PyPI's podman-compose (the dev extra): Debian's 1.0.3 cannot read compose.yaml's
# long-form `env_file: [{path, required}]`.
COMPOSE = (sys.executable, "-m", "podman_compose")
STANDINS = {
    "postgres": "docker.io/library/postgres:16-alpine",
    "redis": "docker.io/library/redis:7-alpine",
    "prometheus": "docker.io/prom/prometheus:v2.53.0",
    "alertmanager": "docker.io/prom/alertmanager:v0.27.0",
}
API_TOKEN = "compose-api-token-" + "0123456789abcdef"
AM_TOKEN = "compose-alertmanager-token-0123456789"
RULES = """groups:
  - name: compose
    interval: 2s
    rules:
      - name: api-5xx-ratio
        source: prometheus
        query: |
          sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[10s]))
          / sum(rate(http_requests_total{service="{{ service }}"}[10s]))
        threshold: "> 5%"
        no_data: ok
        action: rollback
        severity: critical
"""


def wait(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def project(tmp: Path) -> Path:
    """A copy of the project's compose files with an operator's settings filled in."""
    for name in ("compose.yaml", "deploy", "alertmanager", "examples/demoapp.py"):
        src, dst = REPO / name, tmp / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    (tmp / "deploy/watchdog.env").write_text(
        f"WATCHDOG_API_TOKEN={API_TOKEN}\nWATCHDOG_ALERTMANAGER_TOKEN={AM_TOKEN}\n"
        "WATCHDOG_LOG_LEVEL=info\n"
        "WATCHDOG_CONFIRM_FOR=0\n"  # ends at rolled_back: confirmation has its own tests
    )
    (tmp / "deploy/alertmanager-token").write_text(AM_TOKEN)
    prom = tmp / "deploy/prometheus.yml"
    prom.write_text(prom.read_text().replace("scrape_interval: 15s", "scrape_interval: 2s"))
    (tmp / "rules").mkdir()
    (tmp / "rules/compose.yml").write_text(RULES)
    for path in [tmp, *tmp.rglob("*")]:  # the containers' users read the mounts
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp


@pytest.fixture(scope="module")
def stack(
    podman: Podman,
    watchdog_image: tuple[str, str],
    standin_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Podman, Path, str]]:
    for name in STANDINS.values():
        podman.run("podman", "tag", standin_image, name)
    home = project(tmp_path_factory.mktemp("compose"))
    name = f"wdc{uuid.uuid4().hex[:6]}"
    compose = [*COMPOSE, "-p", name, "-f", str(home / "compose.yaml")]
    try:
        podman.run(*compose, "up", "-d", "--no-build", cwd=home, timeout=600)
        yield podman, home, name
    finally:
        podman.run(*compose, "down", "-v", cwd=home, check=False, timeout=300)


def api(method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    return httpx.request(method, f"http://127.0.0.1:8080{path}", headers=headers, timeout=10, **kw)


def test_the_stack_comes_up_talks_and_rolls_back_once_then_leaves_nothing(
    stack: tuple[Podman, Path, str],
) -> None:
    podman, home, name = stack
    wait(lambda: api("GET", "/readyz").status_code == 200, "the watchdog to be ready", 180)
    wait(
        lambda: httpx.get("http://127.0.0.1:9090/-/ready", timeout=5).status_code == 200,
        "Prometheus",
    )
    # The watchdog reaches Prometheus by its service name: the rule gets values.
    # The stand-in api has only ever served v2, so the watchdog has never seen v1 running:
    # `force` registers it (an unseen previous version is refused otherwise, issue 25).
    opened = api("POST", "/api/v1/deployments", json={
        "service": "api", "environment": "production", "version": "v2", "previous_version": "v1",
        "force": True,
    })  # fmt: skip
    assert opened.is_success, f"{opened.status_code} {opened.text}"
    window = opened.json()
    path = f"/api/v1/deployments/{window['id']}"
    rule = wait(lambda: next((r for r in api("GET", path).json()["rules"] if r["last_value"] is not None), None),
                "the rule's first value from http://prometheus:9090")  # fmt: skip
    assert rule["verdict"] == "ok" and rule["last_value"] == 0.0
    # Alertmanager reaches the watchdog with the token from its compose secret.
    alert = {"labels": {"alertname": "ComposeProbe", "rollback": "true", "service": "api",
                        "environment": "production"}, "annotations": {"summary": "probe"}}  # fmt: skip
    httpx.post("http://127.0.0.1:9093/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
    wait(lambda: any(a["labels"].get("alertname") == "ComposeProbe"
                     for a in api("GET", "/api/v1/alerts").json()["alerts"]),
         "Alertmanager's webhook at the watchdog", 90)  # fmt: skip
    # A fault in the stack's app: rolled back exactly once.
    httpx.post(
        "http://127.0.0.1:8000/fault", json={"error_ratio": 0.5}, timeout=5
    ).raise_for_status()
    wait(lambda: api("GET", path).json()["window"]["phase"] in ("rolled_back", "rollback_failed"),
         "the rollback", 120)  # fmt: skip
    detail = api("GET", path).json()
    assert detail["window"]["phase"] == "rolled_back"
    assert [e["kind"] for e in detail["events"]].count("rollback_started") == 1
    calls = httpx.get("http://127.0.0.1:8000/rollback/calls", timeout=5).json()["calls"]
    assert [c["version"] for c in calls] == ["v1"]
    compose = [*COMPOSE, "-p", name, "-f", str(home / "compose.yaml")]
    podman.run(*compose, "down", "-v", cwd=home, timeout=300)
    left = podman.run("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={name}",
                      "--format", "{{.Names}}").stdout.split()  # fmt: skip
    assert left == []
