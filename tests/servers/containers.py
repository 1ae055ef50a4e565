"""Podman and buildah for tests: a Debian base image made with mmdebstrap, images built
from the project's own Dockerfile, containers run on the host network.

No registry can be reached here, so bases are made, not pulled: ``mmdebstrap`` writes a
bookworm root file system with the packages asked for, ``podman import`` turns it into
an image. Everything runs as root with the settings this machine needs (``vfs``
storage, ``chroot`` isolation for builds, the ``runc`` runtime, ``cgroupfs``, no default
ulimits, netavark networks with aardvark-dns name resolution for compose), written to a ``containers.conf`` / ``storage.conf`` of the tests' own under
``ROOT`` and passed through ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF``: nothing
in /etc is touched. ``ROOT`` persists between runs so a machine that has built a base
once reuses it (CI on a fresh machine builds everything).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(os.environ.get("WATCHDOG_TEST_CONTAINERS", "/var/tmp/rollback-watchdog-containers"))
CONTAINERS_CONF = """[containers]
default_ulimits = []
netns = "host"
[network]
network_backend = "netavark"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""
STORAGE_CONF = """[storage]
driver = "vfs"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""
TOOLS = ("podman", "buildah", "mmdebstrap", "runc")


def unavailable() -> str | None:
    """Why containers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "podman tests run as root (vfs storage, chroot isolation)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/system-deps.sh installs them as root)"
    return None


@dataclass(frozen=True)
class Podman:
    """Runs podman/buildah with the tests' own configuration."""

    root: Path = ROOT

    def env(self) -> dict[str, str]:
        """The environment every podman/buildah call gets."""
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "containers.conf").write_text(CONTAINERS_CONF)
        (conf / "storage.conf").write_text(STORAGE_CONF.format(root=self.root))
        return {
            **os.environ,
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
        }

    def run(
        self, *argv: str, timeout: float = 600, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (``podman …``, ``buildah …``); raise with its output on failure."""
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=cwd
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({done.returncode}): "
                               f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")  # fmt: skip
        return done

    def has_image(self, name: str) -> bool:
        """Whether ``name`` is in the local storage."""
        return self.run("podman", "image", "exists", name, check=False).returncode == 0

    def debian_base(self, packages: Sequence[str], tag_prefix: str = "localhost/wd-base") -> str:
        """A bookworm image with ``packages``, made once per package set; returns its name."""
        key = hashlib.sha256(",".join(sorted(packages)).encode()).hexdigest()[:12]
        name = f"{tag_prefix}:{key}"
        if self.has_image(name):
            return name
        tar = self.root / f"base-{key}.tar"
        if not tar.exists():
            partial = tar.with_name(f"{tar.stem}.partial.tar")  # the suffix picks the format
            subprocess.run(
                ["mmdebstrap", "--variant=apt", f"--include={','.join(packages)}",
                 "bookworm", str(partial)],
                check=True, capture_output=True, timeout=900,
            )  # fmt: skip
            partial.rename(tar)
        self.run("podman", "import", str(tar), name)
        return name

    def build(
        self, context: Path, tag: str, *, build_args: dict[str, str], file: str = "Dockerfile"
    ) -> None:
        """``buildah bud`` in Docker format (HEALTHCHECK kept), the host's CA certificates
        mounted read-only (pip verifies the package index with them)."""
        args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
        self.run("buildah", "bud", "--format", "docker", "--isolation", "chroot",
                 "--network", "host", "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro",
                 "-f", str(context / file), *args, "-t", tag, str(context), timeout=1200)  # fmt: skip

    def size(self, image: str) -> int:
        """The image's size in bytes."""
        return int(self.run("podman", "image", "inspect", image, "--format", "{{.Size}}").stdout)
