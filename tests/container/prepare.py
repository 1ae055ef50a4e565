"""Container images made in the background while the rest of the suite runs.

Making a Debian base (mmdebstrap) and building images is mostly waiting on downloads
and disks; the rest of the suite is mostly CPU. So once collection shows container tests
will run, a worker thread starts making the bases and images, the container tests are
moved to the end of the run, and their fixtures only wait for what was started.
"""

from __future__ import annotations

import hashlib
import json
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
FRESH_INPUTS = ("scripts/system-deps.sh", "scripts/system-deps.txt", "tests/preflight.py")
# The host's apt sources and settings (a mirror, a proxy, a snapshot's validity rules):
# the bare machine installs from where this one does. Copied, not mounted: packages
# write there too (postgresql-common its autoremove settings).
FRESH = """set -u
python3 -m tests.preflight test > /tmp/bare.out 2>&1; echo $? > /tmp/bare.code
rm -f /etc/apt/sources.list && cp -r /host-apt/sources.list.d /host-apt/apt.conf.d /etc/apt/
# container-only: dpkg's fsync per file makes unpacking take minutes on a busy disk
echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/unsafe-io
started=$(date +%s)
scripts/system-deps.sh > /tmp/install.out 2>&1; echo $? > /tmp/install.code
echo $(( $(date +%s) - started )) > /tmp/install.seconds
python3 -m tests.preflight test > /tmp/after.out 2>&1; echo $? > /tmp/after.code
python3 -c 'import json, pathlib; print(json.dumps({n: pathlib.Path(f"/tmp/{n}").read_text()
    for n in ("bare.out", "bare.code", "install.out", "install.code", "install.seconds",
              "after.out", "after.code")}))'
"""


@dataclass(frozen=True)
class Fresh:
    """The preflight on the bare base, then ``scripts/system-deps.sh``, then the preflight
    again: each step's exit code and output (``reused``: by an earlier run on this
    machine, for these exact inputs)."""

    bare: tuple[int, str]
    install: tuple[int, str]
    after: tuple[int, str]
    seconds: float  # the install's
    reused: bool


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
    """The bare Debian base the image is built on (a machine with nothing installed by
    hand): the preflight, ``scripts/system-deps.sh`` and the preflight again, in one
    privileged container (iptables and podman inside need root's capabilities).

    Like the bases, a result is kept per inputs (the base, the install script, its table,
    the preflight): a machine that passed this exact list before reuses it; CI on a fresh
    machine, or any change to the list or the checks, runs it for real. Failures are not
    kept.
    """
    base = podman.debian_base(PYTHON_BASE)
    digest = hashlib.sha256(base.encode())
    for name in FRESH_INPUTS:
        digest.update((REPO / name).read_bytes())
    kept = podman.root / f"fresh-{digest.hexdigest()[:12]}.json"
    if kept.exists():
        return _fresh(json.loads(kept.read_text()), reused=True)
    done = podman.run("podman", "run", "--rm", "--privileged", "-v", "/etc/apt:/host-apt:ro",
                      "-v", f"{REPO}:/src:ro", "-w", "/src", base, "sh", "-c", FRESH,
                      check=False, timeout=2400)  # fmt: skip
    if done.returncode != 0:
        failed = (done.returncode, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return Fresh((0, ""), failed, (0, ""), 0.0, reused=False)
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    fresh = _fresh(steps, reused=False)
    if fresh.install[0] == 0 and fresh.after[0] == 0:
        kept.write_text(json.dumps(steps))
    return fresh


def _fresh(steps: dict[str, str], *, reused: bool) -> Fresh:
    def step(name: str) -> tuple[int, str]:
        return int(steps[f"{name}.code"]), steps[f"{name}.out"][-4000:]

    seconds = float(steps["install.seconds"])
    return Fresh(step("bare"), step("install"), step("after"), seconds, reused)


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
