"""Which files a list of rule paths names: what a rule directory may hand the loader."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def _in_directory(path: Path, problems: list[str]) -> list[Path]:
    """The rule files of a directory: regular files only (a FIFO would block the read),
    and a symlink only when it stays inside the directory (a Kubernetes ConfigMap's
    ``..data/`` links do). One pointing out (``x.yml -> /etc/shadow``) is never read:
    an error about it would quote foreign content (issue 25)."""
    root = path.resolve()
    found: list[Path] = []
    for entry in sorted(path.iterdir()):
        if entry.suffix not in {".yml", ".yaml"} or not entry.is_file():
            continue  # is_file follows symlinks: a FIFO or a dangling link is skipped
        if entry.is_symlink() and not entry.resolve().is_relative_to(root):
            problems.append(
                f"{entry}:0: not read: a symlink to a file outside {path}/ "
                "(name that file itself in WATCHDOG_RULES to load it)"
            )
            continue
        found.append(entry)
    return found


def rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """The rule files under ``paths`` (files, or directories of ``*.yml``/``*.yaml``),
    and a ``file:0: problem`` for each path that cannot be one."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            files.extend(_in_directory(path, problems))
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append(f"{path}:0: cannot read: not a regular file")
        else:
            problems.append(f"{path}:0: no such file or directory")
    return files, problems
