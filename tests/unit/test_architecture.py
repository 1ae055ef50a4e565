"""The docs stay true: docs/architecture.md names every module under watchdog/ (a new
module without a row, or a mention in its package's row, fails here), and the README's
first screen gives a user a working install and config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchdog.settings import Settings
from watchdog.wiring import checked_rules

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
    text = DOC.read_text().replace("`lifecycle/engine.py`", "`lifecycle/engine`")
    assert "lifecycle/engine.py" in missing(text)
    text = DOC.read_text().replace("`outbox.py`", "outbox")
    assert "notify/outbox.py" in missing(text)


def test_the_readmes_first_screen_installs_configures_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user meets first: install (pip, image), a minimal config that loads with
    the shipped rules, and `make demo` / `make test`, all within the first 45 lines."""
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:45])
    assert "pip install" in first and "docker build" in first
    assert "make demo" in first and "make test" in first
    config = re.search(r"```yaml\n(.*?)```", first, re.S)
    assert config is not None
    (tmp_path / "watchdog.yml").write_text(config.group(1))
    monkeypatch.chdir(ROOT)  # `rules: [rules/]` is relative to a clone
    monkeypatch.setenv("WATCHDOG_CONFIG", str(tmp_path / "watchdog.yml"))
    settings = Settings()
    assert settings.default_plan in settings.plans
    assert checked_rules(settings).rules  # every rule valid, every target configured
