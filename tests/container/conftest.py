"""Shared container fixtures: podman configured for this machine, and the images made
in the background (``prepare.py``) while the rest of the suite runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.container import prepare
from tests.servers.containers import Podman, unavailable


@pytest.fixture(scope="session")
def podman() -> Podman:
    why = unavailable()
    if why:
        pytest.skip(why)
    return Podman()


@pytest.fixture(scope="session")
def watchdog_image(podman: Podman, pytestconfig: pytest.Config) -> Iterator[tuple[str, str]]:
    """(base, image): the Dockerfile built on an mmdebstrap Debian base."""
    base, tag = prepare.get(pytestconfig, podman).watchdog.result(timeout=1800)
    yield base, tag
    podman.run("podman", "rmi", "-f", tag, prepare.LOCAL_TAG, check=False)
    podman.run("podman", "image", "prune", "-f", check=False)


@pytest.fixture(scope="session")
def standin_image(podman: Podman, pytestconfig: pytest.Config) -> str:
    """The stand-in image for compose.yaml's third-party services."""
    return prepare.get(pytestconfig, podman).standin.result(timeout=1800)[1]


@pytest.fixture(scope="session")
def fresh_machine(podman: Podman, pytestconfig: pytest.Config) -> prepare.Fresh:
    """The bare Debian base after scripts/system-deps.sh (test_fresh_machine.py)."""
    return prepare.get(pytestconfig, podman).fresh.result(timeout=3600)
