"""Stub command-line tools (``docker``, ``kubectl``, ``alembic``) for executor tests.

``install_stub(bin_dir, "docker")`` writes an executable that appends one JSON line per
call (its argv, working directory and environment) to ``bin_dir/docker.calls`` and
exits with the next code listed in ``bin_dir/docker.exits`` (0 when none is left).
Tests put ``bin_dir`` first on PATH, so the executor finds the stub as it would find
the real tool.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STUB = """#!{python}
import json, os, sys
here = {here!r}
name = {name!r}
with open(os.path.join(here, name + ".calls"), "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}) + "\\n")
exits = os.path.join(here, name + ".exits")
code = 0
if os.path.exists(exits):
    codes = open(exits).read().split()
    if codes:
        code = int(codes[0])
        open(exits, "w").write(" ".join(codes[1:]))
print(name, "stub", " ".join(sys.argv[1:]))
sys.exit(code)
"""


def install_stub(bin_dir: Path, name: str, exits: list[int] | None = None) -> Path:
    """Write the stub ``name`` into ``bin_dir``; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(STUB.format(python=sys.executable, here=str(bin_dir), name=name))
    path.chmod(0o755)
    if exits:
        (bin_dir / f"{name}.exits").write_text(" ".join(map(str, exits)))
    return path


def stub_calls(bin_dir: Path, name: str) -> list[dict[str, Any]]:
    """Every recorded call of the stub, in order."""
    log = bin_dir / f"{name}.calls"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
