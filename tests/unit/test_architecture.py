"""docs/architecture.md names every module under watchdog/: a new module without a row
(or a mention in its package's row) fails here, so the map cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "watchdog"
DOC = ROOT / "docs" / "architecture.md"

ROW = re.compile(r"^\| `([^`]+)` \|(.*)\|\s*$", re.M)


def modules() -> list[str]:
    """Every module, relative to watchdog/ (``app.py``, ``sources/http.py``, ``ha/``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "__init__.py":
            continue
        found.append(rel.removesuffix("__init__.py"))  # a package is named by its folder
    return found


def rows(text: str) -> dict[str, str]:
    """The Parts table: first cell (a module or package) → the rest of the row."""
    return {m.group(1): m.group(2) for m in ROW.finditer(text)}


def mentioned(module: str, text: str, table: dict[str, str]) -> bool:
    """``pkg/name.py`` counts when the doc names it in full, or the ``pkg/`` row names
    ``name.py``; a package when it has a row or is named in full."""
    if f"`{module}`" in text or module in table:
        return True
    folder, _, name = module.rstrip("/").rpartition("/")
    if not folder:
        return False
    row = table.get(f"{folder}/", "")
    return f"`{name}`" in row or (module.endswith("/") and f"`{name}/`" in row)


def missing(text: str) -> list[str]:
    table = rows(text)
    return [m for m in modules() if not mentioned(m, text, table)]


def test_every_module_is_in_the_architecture_doc() -> None:
    assert missing(DOC.read_text()) == []


def test_a_module_left_out_is_reported() -> None:
    text = DOC.read_text().replace("`engine.py`", "`engine`")
    assert "engine.py" in missing(text)
    text = DOC.read_text().replace("`outbox.py`", "outbox")
    assert "notify/outbox.py" in missing(text)
