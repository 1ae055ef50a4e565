"""Container images made in the background while the rest of the suite runs.

Making a Debian base (mmdebstrap) and building images is mostly waiting on downloads
and disks; the rest of the suite is mostly CPU. So once collection shows container tests
will run, a worker thread starts making the bases and images, the container tests are
moved to the end of the run, and their fixtures only wait for what was started.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.containers import Podman

REPO = Path(__file__).resolve().parents[2]
PYTHON_BASE = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
STANDIN_PACKAGES = ("postgresql", "redis-server", "redis-tools", "prometheus",
                    "prometheus-alertmanager", "wget", "ca-certificates")  # fmt: skip
LOCAL_TAG = "localhost/rollback-watchdog:local"  # the name compose.yaml uses
STANDIN_TAG = "localhost/wd-standin:test"


@dataclass(frozen=True)
class Prepared:
    """Futures of what the worker makes: (base, image) pairs."""

    watchdog: Future[tuple[str, str]]
    standin: Future[tuple[str, str]]


KEY = pytest.StashKey[Prepared]()


def watchdog_image(podman: Podman) -> tuple[str, str]:
    """The Dockerfile built on a Debian base; also tagged as compose.yaml names it."""
    base = podman.debian_base(PYTHON_BASE)
    tag = f"localhost/rollback-watchdog:test-{uuid.uuid4().hex[:8]}"
    podman.build(REPO, tag, build_args={"BASE": base})
    podman.run("podman", "tag", tag, LOCAL_TAG)
    return base, tag


def standin_image(podman: Podman) -> tuple[str, str]:
    """One stand-in image for compose.yaml's postgres, redis, prometheus, alertmanager."""
    base = podman.debian_base(STANDIN_PACKAGES, tag_prefix="localhost/wd-standin-base")
    context = REPO / "tests/container/standins"
    podman.build(context, STANDIN_TAG, build_args={"BASE": base}, file="Containerfile")
    return base, STANDIN_TAG


def start(config: pytest.Config, podman: Podman) -> Prepared:
    """Start making both images on one worker thread (one build at a time)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="images")
    prepared = Prepared(pool.submit(watchdog_image, podman), pool.submit(standin_image, podman))
    pool.shutdown(wait=False)
    config.stash[KEY] = prepared
    return prepared


def get(config: pytest.Config, podman: Podman) -> Prepared:
    """What was started in the background, or started now (a run of these tests alone)."""
    return config.stash.get(KEY, None) or start(config, podman)
