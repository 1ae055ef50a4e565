"""Container images made in the background while the rest of the suite runs.

Making a Debian base (mmdebstrap) and building images is mostly waiting on downloads
and disks; the rest of the suite is mostly CPU. So once collection shows container tests
will run, a worker thread starts making the bases and images, the container tests are
moved to the end of the run, and their fixtures only wait for what was started.
"""

from __future__ import annotations

import hashlib
import time
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
FRESH_INPUTS = ("scripts/system-deps.sh", "scripts/system-deps.txt")
# The host's apt sources and settings (a mirror, a proxy, a snapshot's validity rules):
# the bare machine installs from where this one does. Copied, not mounted: packages
# write there too (postgresql-common its autoremove settings).
APT_FROM_HOST = ("-v", "/etc/apt:/host-apt:ro")
INSTALL = ("rm -f /etc/apt/sources.list"
           " && cp -r /host-apt/sources.list.d /host-apt/apt.conf.d /etc/apt/"
           # container-only: dpkg's fsync per file makes unpacking take minutes here
           " && echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/unsafe-io"
           " && /src/scripts/system-deps.sh")  # fmt: skip


@dataclass(frozen=True)
class Fresh:
    """The bare base after ``scripts/system-deps.sh``: the image (None when the install
    failed), what the install said, and how long it took (0: made by an earlier run)."""

    base: str
    image: str | None
    output: str
    seconds: float


@dataclass(frozen=True)
class Prepared:
    """Futures of what the worker makes: (base, image) pairs, and the fresh machine."""

    watchdog: Future[tuple[str, str]]
    standin: Future[tuple[str, str]]
    fresh: Future[Fresh]


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


def fresh_machine(podman: Podman) -> Fresh:
    """The bare Debian base the image is built on, after ``scripts/system-deps.sh``.

    Made once per (base, script, table), like the bases: a machine that installed this
    exact list before reuses the result; CI on a fresh machine, or any change to the
    list, installs for real.
    """
    base = podman.debian_base(PYTHON_BASE)
    digest = hashlib.sha256(base.encode())
    for name in FRESH_INPUTS:
        digest.update((REPO / name).read_bytes())
    image = f"localhost/wd-fresh:{digest.hexdigest()[:12]}"
    if podman.has_image(image):
        return Fresh(base, image, "made by an earlier run", 0.0)
    container, started = f"wd-fresh-{uuid.uuid4().hex[:8]}", time.monotonic()
    done = podman.run("podman", "run", "--name", container, *APT_FROM_HOST,
                      "-v", f"{REPO / 'scripts'}:/src/scripts:ro", base, "sh", "-c", INSTALL,
                      check=False, timeout=2400)  # fmt: skip
    try:
        if done.returncode == 0:
            podman.run("podman", "commit", "--quiet", container, image, timeout=1200)
    finally:
        podman.run("podman", "rm", "-f", container, check=False)
    output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}".strip()
    made = image if done.returncode == 0 else None
    return Fresh(base, made, output, time.monotonic() - started)


def start(config: pytest.Config, podman: Podman) -> Prepared:
    """Start making the images on one worker thread (one build at a time)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="images")
    prepared = Prepared(
        pool.submit(watchdog_image, podman),
        pool.submit(standin_image, podman),
        pool.submit(fresh_machine, podman),
    )
    pool.shutdown(wait=False)
    config.stash[KEY] = prepared
    return prepared


def get(config: pytest.Config, podman: Podman) -> Prepared:
    """What was started in the background, or started now (a run of these tests alone)."""
    return config.stash.get(KEY, None) or start(config, podman)
