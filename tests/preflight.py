"""Preflight: every program the suite (or the demo) runs is here, in seconds, before a
fixture finds out ten minutes in.

``python -m tests.preflight [demo|test]`` (``make demo`` / ``make test`` run it first)
checks each program of ``scripts/system-deps.txt`` for the group (``test`` includes
``demo``, and ``container`` when root, as the container tests need root), and, for the
container tests, that what podman's networks call works: ``iptables`` answers and a
podman network can be created and removed with the tests' own configuration. A miss
names the Debian package to install and exits 1.

Standard library only: it also runs on a bare Debian, before any virtualenv exists
(tests/container/test_fresh_machine.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "scripts" / "system-deps.txt"
GROUPS = {"demo": ("demo",), "test": ("demo", "test", "container")}


@dataclass(frozen=True)
class Need:
    """One row of the table: a program, its package, where else it lives, who needs it."""

    group: str
    program: str
    package: str
    where: tuple[str, ...]
    why: str

    def found(self) -> str | None:
        """The program's path, or None."""
        if hit := shutil.which(self.program):
            return hit
        for pattern in self.where:
            for path in sorted(glob.glob(pattern)):
                if os.access(path, os.X_OK):
                    return path
        return None


def needs(table: Path = TABLE) -> list[Need]:
    """The table's rows, in order."""
    rows = []
    for line in table.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        group, program, package, where, *why = line.split()
        paths = () if where == "-" else tuple(where.split(","))
        rows.append(Need(group, program, package, paths, " ".join(why)))
    return rows


def wanted(target: str, is_root: bool) -> set[str]:
    """The groups ``target`` checks; container tests run (and are checked) as root only."""
    groups = set(GROUPS[target])
    if not is_root:
        groups.discard("container")
    return groups


def missing(rows: list[Need], groups: set[str]) -> list[Need]:
    """The rows of ``groups`` whose program cannot be found."""
    return [r for r in rows if r.group in groups and r.found() is None]


def _run(argv: list[str], env: dict[str, str] | None = None) -> str | None:
    """None when ``argv`` succeeds, else what it said."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()[-500:]


def iptables_answers() -> str | None:
    """netavark runs ``iptables`` for every network it sets up: it must work, not just exist."""
    why = _run(["iptables", "-w", "-n", "-L", "FORWARD"])
    return f"`iptables -L` failed (netavark needs it): {why}" if why else None


def podman_network() -> str | None:
    """A podman network created and removed with the container tests' configuration."""
    from tests.servers.containers import Podman

    env, name = Podman().env(), f"wd-preflight-{uuid.uuid4().hex[:8]}"
    if why := _run(["podman", "network", "create", name], env):
        return f"`podman network create` failed: {why}"
    if why := _run(["podman", "network", "rm", "-f", name], env):
        return f"`podman network rm` failed: {why}"
    return None


CHECKS: list[Callable[[], str | None]] = [iptables_answers, podman_network]


def report(target: str, is_root: bool) -> list[str]:
    """Every problem found, one line each (empty: all set)."""
    groups = wanted(target, is_root)
    absent = missing(needs(), groups)
    lines = [f"missing {r.program} (Debian package {r.package}): {r.why}" for r in absent]
    if absent:
        packages = " ".join(dict.fromkeys(r.package for r in absent))
        lines.append(f"install: apt-get install -y --no-install-recommends {packages}"
                     "  (or: make system-deps, as root)")  # fmt: skip
    elif "container" in groups:
        lines += [problem for check in CHECKS if (problem := check())]
    return lines


def main(argv: list[str]) -> int:
    """``python -m tests.preflight [demo|test]``: exit 0 when everything is there."""
    target = argv[0] if argv else "test"
    if target not in GROUPS:
        print(f"usage: python -m tests.preflight [{'|'.join(GROUPS)}]", file=sys.stderr)
        return 2
    problems = report(target, os.geteuid() == 0)
    for line in problems:
        print(f"preflight: {line}", file=sys.stderr)
    if not problems:
        print(f"preflight: every program `make {target}` runs is installed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
