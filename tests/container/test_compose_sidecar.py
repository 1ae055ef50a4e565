"""The `compose` rollback step run from the sidecar image, as docs/deploy.md tells people
to: the engine's socket mounted at /var/run/docker.sock (the watchdog's user in the
socket's group), the project directory mounted at the same path, read-write (the pin
is written there). The engine is podman's Docker-compatible API service; the image's
own docker-compose (Debian's) first brings the "operator's" project up, then the
watchdog's rollback re-pins the service to the previous image: the container runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import free_port
from tests.servers.containers import Podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]

TOKEN = "sidecar-api-token-0123456789abcdef"
SOCKET_GID = 4242  # the socket's group, as `docker` is on a Docker host
APP = "localhost/sidecar-app"


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
        time.sleep(0.5)


@pytest.fixture(scope="module")
def engine(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Podman's Docker-compatible API on a socket owned by root:SOCKET_GID, mode 0660."""
    home = tmp_path_factory.mktemp("engine")
    sock = home / "docker.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=podman.env(),
        stdout=subprocess.DEVNULL,
        stderr=(home / "service.log").open("wb"),
    )
    try:
        wait(sock.exists, "podman's API socket", 60)
        sock.chmod(0o660)
        os.chown(sock, 0, SOCKET_GID)
        yield sock
    finally:
        service.terminate()
        service.wait(timeout=30)


def compose_yaml() -> str:
    return (
        "services:\n"
        "  app:\n"
        f"    image: {APP}:v2\n"
        '    entrypoint: ["sleep", "infinity"]\n'
        "    network_mode: host\n"
    )


def watchdog_yml(home: Path, project: str) -> str:
    plan = {
        "confirm_for": 0,
        "default_plan": "compose",
        "plans": {
            "compose": {
                "steps": [
                    {
                        "name": "pin-previous-image",
                        "kind": "compose",
                        "service": "app",
                        "image": APP + ":{{ previous_version }}",
                        "project_directory": str(home),
                        "project_name": project,
                        "timeout": "180s",
                    }
                ]
            }
        },
    }
    return json.dumps(plan)


def test_the_sidecar_rolls_a_compose_service_back_through_the_mounted_socket(
    podman: Podman, watchdog_image: tuple[str, str], engine: Path, tmp_path: Path
) -> None:
    base, image = watchdog_image
    podman.run("podman", "tag", base, f"{APP}:v1")
    podman.run("podman", "tag", image, f"{APP}:v2")
    project = f"sc{uuid.uuid4().hex[:6]}"
    home = tmp_path / "project"
    home.mkdir()
    (home / "compose.yaml").write_text(compose_yaml())
    (home / "watchdog.yml").write_text(watchdog_yml(home, project))
    (home / "rules").mkdir()
    port = free_port()
    (home / "rules/self.yml").write_text(
        "groups:\n  - name: self\n    interval: 1h\n    rules:\n"
        f"      - {{name: self, source: http, url: 'http://127.0.0.1:{port}/healthz'}}\n"
    )
    home.chmod(0o777)  # the watchdog's user writes the pin there
    for path in home.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    mounts = ["-v", f"{engine}:/var/run/docker.sock", "-v", f"{home}:{home}"]
    # The operator's `docker compose up -d`, with the image's own CLI.
    compose = ["podman", "run", "--rm", "--network", "host", *mounts, "-w", str(home),
               "--user", "0", "--entrypoint", "docker-compose", image, "-p", project]  # fmt: skip
    podman.run(*compose, "up", "-d", timeout=300)
    name = f"wd{project}"
    try:
        podman.run(
            "podman", "run", "-d", "--name", name, "--network", "host", *mounts,
            "--group-add", str(SOCKET_GID),
            "-v", f"{home / 'rules'}:/etc/watchdog/rules:ro",
            "-v", f"{home / 'watchdog.yml'}:/etc/watchdog/watchdog.yml:ro",
            "-e", "WATCHDOG_CONFIG=/etc/watchdog/watchdog.yml",
            "-e", f"WATCHDOG_LISTEN_PORT={port}", "-e", f"WATCHDOG_API_TOKEN={TOKEN}",
            "-e", "WATCHDOG_STORE_URL=sqlite:////tmp/watchdog.db",
            image,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        wait(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, "the watchdog")
        body = {"service": "app", "version": "v2", "previous_version": "v1", "force": True}
        window = httpx.post(f"{url}/api/v1/deployments", json=body, headers=headers).json()
        path = f"{url}/api/v1/deployments/{window['id']}"
        httpx.post(f"{path}/rollback", json={}, headers=headers, timeout=30).raise_for_status()

        def ended() -> dict[str, Any] | None:
            detail: dict[str, Any] = httpx.get(path, headers=headers, timeout=10).json()
            done = detail["window"]["phase"] in ("rolled_back", "rollback_failed")
            return detail if done else None

        detail = wait(ended, "the compose rollback", 300)
        steps = [e["message"] for e in detail["events"] if e["kind"].startswith("step")]
        assert detail["window"]["phase"] == "rolled_back", (steps, detail["window"])
        running = podman.run(
            "podman", "ps", "--filter", f"label=com.docker.compose.project={project}",
            "--format", "{{.Image}}",
        ).stdout.split()  # fmt: skip
        assert running == [f"{APP}:v1"]
        pin = json.loads((home / "compose.rollback.yml").read_text().split("\n", 1)[1])
        assert pin == {"services": {"app": {"image": f"{APP}:v1"}}}
    finally:
        # Removed directly rather than by another `down` container (a minute on vfs).
        project_containers = podman.run(
            "podman", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
            check=False,
        ).stdout.split()  # fmt: skip
        podman.run("podman", "rm", "-f", name, *project_containers, check=False)
        podman.run("podman", "rmi", f"{APP}:v1", f"{APP}:v2", check=False)
