"""The image, built from the Dockerfile with buildah and run with podman.

The base is a Debian bookworm root made with mmdebstrap (``ARG BASE``): no registry
serves ``python:3.11-slim`` here. Checks what an operator relies on: the service
becomes ready, runs as a non-root user, its HEALTHCHECK passes inside the container,
and what the image adds over its base (printed, and recorded in docs/deploy.md).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from examples.stack import free_port
from tests.servers.containers import Podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
TOKEN = "image-test-token-0123456789abcdef"
RULES = """groups:
  - name: g
    rules:
      - name: health
        source: http
        url: http://127.0.0.1:9/health
        action: notify
"""


@pytest.fixture(scope="module")
def image(watchdog_image: tuple[str, str]) -> tuple[str, str]:
    return watchdog_image


@pytest.fixture(scope="module")
def container(
    podman: Podman, image: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    rules = tmp_path_factory.mktemp("image-rules")
    (rules / "rules.yml").write_text(RULES)
    rules.chmod(0o755)  # the container's user (uid 10001) reads the mounted rules
    (rules / "rules.yml").chmod(0o644)
    port = free_port()
    name = f"wd-image-{uuid.uuid4().hex[:8]}"
    podman.run("podman", "run", "-d", "--name", name, "--network", "host",
               "-e", f"WATCHDOG_LISTEN_PORT={port}", "-e", f"WATCHDOG_API_TOKEN={TOKEN}",
               "-v", f"{rules}:/etc/watchdog/rules:ro", image[1])  # fmt: skip
    try:
        yield name, port
    finally:
        podman.run("podman", "rm", "-f", name, check=False)


def test_the_image_serves_ready_as_a_non_root_user(
    podman: Podman, container: tuple[str, int]
) -> None:
    name, port = container
    deadline = time.monotonic() + 60
    while True:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if ready.status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, podman.run("podman", "logs", name, check=False).stderr
        time.sleep(0.5)
    uid = podman.run("podman", "exec", name, "id", "-u").stdout.strip()
    assert uid == "10001"
    listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/deployments",
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
    assert listed.status_code == 200 and listed.json()["windows"] == []


def test_the_healthcheck_passes_inside_the_container(
    podman: Podman, container: tuple[str, int]
) -> None:
    name, _ = container
    deadline = time.monotonic() + 60
    while podman.run("podman", "healthcheck", "run", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, "HEALTHCHECK never passed"
        time.sleep(1)
    config = json.loads(podman.run("podman", "inspect", name).stdout)[0]["Config"]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])


def test_the_image_adds_little_over_its_base(podman: Podman, image: tuple[str, str]) -> None:
    base, tag = image
    added = podman.size(tag) - podman.size(base)
    print(
        f"image {podman.size(tag) / 1e6:.1f} MB = base {podman.size(base) / 1e6:.1f} MB + {added / 1e6:.1f} MB"
    )
    # The venv: the package and its runtime dependencies (no scipy or numpy since the
    # judge's beta functions are its own: watchdog/judge/special.py).
    assert 0 < added < 260e6
