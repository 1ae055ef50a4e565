"""Container images made in the background while the rest of the suite runs.

Making a Debian base (mmdebstrap) and building images is mostly waiting on downloads
and disks; the rest of the suite is mostly CPU. So once collection shows container tests
will run, a worker thread starts making the bases and images, the container tests are
moved to the end of the run, and their fixtures only wait for what was started.

Under pytest-xdist (``make test`` runs workers) the images are made once, by the
controller process (``Publisher``, started when a worker's collection shows container
tests), and each result is published as a JSON file in a directory the workers are
handed; the worker that runs the container tests waits for those files (``Published``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

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


T = TypeVar("T", covariant=True)


class Result(Protocol[T]):
    """What a fixture waits on: a Future here, or a file another process writes."""

    def result(self, timeout: float | None = None) -> T: ...


@dataclass(frozen=True)
class Prepared:
    """What the image thread makes: (base, image) pairs, and the fresh machine."""

    watchdog: Result[tuple[str, str]]
    standin: Result[tuple[str, str]]
    fresh: Result[Fresh]


KEY = pytest.StashKey[Prepared]()
SHARED = "wd_images"  # the workerinput key naming the directory results appear in


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
    """What was started in the background, or started now (a run of these tests alone).

    An xdist worker reads what the controller publishes instead of building again.
    """
    if (prepared := config.stash.get(KEY, None)) is not None:
        return prepared
    shared = getattr(config, "workerinput", {}).get(SHARED)
    if shared:
        folder = Path(shared)
        prepared = Prepared(
            Published(folder / "watchdog.json", tuple),
            Published(folder / "standin.json", tuple),
            Published(folder / "fresh.json", _decode_fresh),
        )
        config.stash[KEY] = prepared
        return prepared
    return start(config, podman)


def _decode_fresh(value: dict[str, Any]) -> Fresh:
    pairs = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return Fresh(**pairs)


class Published(Generic[T]):
    """A result the xdist controller publishes as ``{"value": …}`` or ``{"error": …}``."""

    def __init__(self, path: Path, decode: Callable[[Any], T]) -> None:
        self.path = path
        self.decode = decode

    def result(self, timeout: float | None = None) -> T:
        """Wait for the file (the build finishing), then decode it or raise its error."""
        deadline = time.monotonic() + (timeout if timeout is not None else 3600)
        while not self.path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path.name} was not published in {timeout} s")
            time.sleep(1)  # polling a file another process writes once: nothing to wait on
        data = json.loads(self.path.read_text())
        if "error" in data:
            raise RuntimeError(f"making the images failed: {data['error']}")
        return self.decode(data["value"])


class Publisher:
    """xdist controller plugin: makes the images once, for whichever worker needs them."""

    def __init__(self, config: pytest.Config, podman: Podman) -> None:
        self.config = config
        self.podman = podman
        self.folder = Path(tempfile.mkdtemp(prefix="wd-images-"))
        self.started = False

    def pytest_configure_node(self, node: Any) -> None:
        """Hand each worker the directory results appear in."""
        node.workerinput[SHARED] = str(self.folder)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Start building as soon as a worker's collection holds container tests."""
        if self.started or not any(i.startswith("tests/container/") for i in ids):
            return
        self.started = True
        prepared = start(self.config, self.podman)
        for field in dataclasses.fields(prepared):
            future = getattr(prepared, field.name)
            assert isinstance(future, Future)
            future.add_done_callback(lambda f, n=field.name: self._publish(n, f))

    def _publish(self, name: str, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            data: dict[str, Any] = {"error": f"{type(error).__name__}: {error}"}
        else:
            value = future.result()
            data = {"value": dataclasses.asdict(value) if isinstance(value, Fresh) else value}
        partial = self.folder / f".{name}.json"
        partial.write_text(json.dumps(data))
        os.replace(partial, self.folder / f"{name}.json")  # a reader never sees half a file

    def pytest_unconfigure(self) -> None:
        """The directory goes with the run."""
        shutil.rmtree(self.folder, ignore_errors=True)
