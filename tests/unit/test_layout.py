"""The floor plan stays true (docs/architecture.md, "Layout"): the top of watchdog/ holds
only the entry modules, the core imports nothing from web/, ha/ nothing from pipeline/,
imports go down the layers, and modules stay short.

Every import is read from the source, function-local ones too; the web/ and ha/ rules
count the ``TYPE_CHECKING`` ones as well, the layers only what runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "watchdog"
DOC = ROOT / "docs" / "architecture.md"

ENTRY = {
    "__init__.py",
    "__main__.py",
    "app.py",
    "parts.py",
    "process.py",
    "settings.py",
    "wiring.py",
}

# Top to bottom; a part may import any part of a lower layer. Within a layer only the
# entry modules and their tools import each other, evaluation/ with judge/ and sources/
# with rulefile/ (a kind's module holds its rule model; the rule file's union of kinds is
# read from the kinds table). Imports under ``if TYPE_CHECKING:`` only name types (a
# kind's builder is typed with Settings) and are not held to the layers.
LAYERS: list[set[str]] = [
    {"__main__.py", "app.py", "parts.py", "process.py", "wiring.py", "cli", "config"},
    {"web"},
    {"settings.py"},
    {"lifecycle"},
    {"pipeline", "deploys"},
    {"actions", "notify", "evaluation", "judge"},
    {"sources", "rulefile", "ha"},
    {"store"},
    {"plumbing"},
    {"foundation"},
    {"__init__.py"},  # `__version__`
]
NEIGHBOURS = {
    ("evaluation", "judge"),
    ("judge", "evaluation"),
    ("sources", "rulefile"),
    ("rulefile", "sources"),
} | {(a, b) for a in LAYERS[0] for b in LAYERS[0]}

# Imports that still go up a layer: (importing module, imported module). May only shrink.
UPWARD: set[tuple[str, str]] = set()

# Modules over LIMIT lines, with their length when the list was last cut: a module may
# shrink below its number (then take it off), never grow past it. May only shrink.
LIMIT = 300
LONG: dict[str, int] = {
    "cli/replay.py": 308,
    "foundation/model.py": 314,
    "plumbing/httpedge.py": 304,
    "settings.py": 307,
    "sources/prometheus.py": 315,
}


def modules() -> Iterator[tuple[str, Path]]:
    """Every module under watchdog/, as its path relative to watchdog/."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path


def imported(source: str, *, types: bool = True) -> set[str]:
    """The watchdog modules (dotted) a source imports; ``from watchdog.x import y`` names
    ``watchdog.x.y`` too, which is the module ``y`` when it is one. ``types=False``
    leaves out the imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    if not types:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] == "watchdog"}


def part(name: str) -> str:
    """The part of the floor plan a module belongs to: its package, or the entry module."""
    if "/" in name:
        return name.split("/")[0]
    return name


def part_of_import(dotted: str) -> str | None:
    """``watchdog.lifecycle.engine`` → ``lifecycle``; ``watchdog.app`` → ``app.py``."""
    segments = dotted.split(".")
    if len(segments) == 1:
        return "__init__.py"
    if (PACKAGE / segments[1]).is_dir():
        return segments[1]
    if (PACKAGE / f"{segments[1]}.py").is_file():
        return f"{segments[1]}.py"
    return "__init__.py" if segments[1].startswith("__") else None


def layer(name: str) -> int:
    for i, members in enumerate(LAYERS):
        if name in members:
            return i
    raise AssertionError(f"{name} is on no layer of LAYERS: place it (and in the doc)")


def module_of(dotted: str) -> str:
    """The longest prefix of a dotted name that is a module or package of watchdog/."""
    segments = dotted.split(".")
    for i in range(len(segments), 1, -1):
        path = PACKAGE.joinpath(*segments[1:i])
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return ".".join(segments[:i])
    return "watchdog"


def upward_imports() -> set[tuple[str, str]]:
    found = set()
    for name, path in modules():
        mine = part(name)
        for target in {module_of(t) for t in imported(path.read_text(), types=False)}:
            theirs = part_of_import(target)
            if theirs is None or theirs == mine or (mine, theirs) in NEIGHBOURS:
                continue
            if layer(theirs) <= layer(mine):
                found.add((name, target))
    return found


def test_the_top_of_the_package_holds_only_the_entry_modules() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} <= ENTRY


def test_the_core_imports_nothing_from_web() -> None:
    allowed = ("web/", "cli/", "app.py", "wiring.py", "process.py")
    found = [
        (name, target)
        for name, path in modules()
        if not name.startswith(allowed)
        for target in imported(path.read_text())
        if target == "watchdog.web" or target.startswith("watchdog.web.")
    ]
    assert found == []


def test_ha_imports_nothing_from_the_pipeline() -> None:
    found = [
        (name, target)
        for name, path in modules()
        if name.startswith("ha/")
        for target in imported(path.read_text())
        if target == "watchdog.pipeline" or target.startswith("watchdog.pipeline.")
    ]
    assert found == []


def test_imports_go_down_the_layers() -> None:
    found = upward_imports()
    assert found - UPWARD == set(), "an import goes up a layer (docs/architecture.md, Layout)"
    assert UPWARD - found == set(), "no longer imported upward: take it off UPWARD"


def test_modules_stay_short() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules()}
    too_long = {n: c for n, c in lengths.items() if c > LIMIT and c > LONG.get(n, LIMIT)}
    assert too_long == {}, f"over {LIMIT} lines (split it; LONG only shrinks)"
    stale = {n: lengths.get(n) for n in LONG if lengths.get(n, 0) <= LIMIT}
    assert stale == {}, "now short (or gone): take it off LONG"
    shrunk = {n: lengths[n] for n, c in LONG.items() if LIMIT < lengths.get(n, 0) < c}
    assert shrunk == {}, "shorter than LONG says: lower its number"


def test_the_layout_section_draws_every_package() -> None:
    text = DOC.read_text()
    section = text[text.index("## Layout") : text.index("## Parts")]
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {p for p in packages if f"{p}/" not in section} == set()
    assert {p for p in packages if f"`{p}/`" not in section} == set()  # in the rule


def test_the_import_reader_sees_every_kind_of_import() -> None:
    source = (
        "import watchdog.a.b\n"
        "from watchdog.c import d\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from watchdog.e import F\n"
        "def g():\n    from watchdog import web\n"
        "from . import relative\n"
    )
    runtime = {"watchdog.a.b", "watchdog.c", "watchdog.c.d", "watchdog", "watchdog.web"}
    assert imported(source) == runtime | {"watchdog.e", "watchdog.e.F"}
    assert imported(source, types=False) == runtime
