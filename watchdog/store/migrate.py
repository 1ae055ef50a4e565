"""Versioned schema migrations shared by the stores: finding, ordering and splitting them.

Each backend keeps its files in ``watchdog/store/migrations/<dialect>/`` named
``NNNN_description.sql``. They are applied in version order, each in the same
transaction as the ``schema_migrations`` row that records it, so a store opened twice
applies nothing new. A file is never edited once released: a change is a new file.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib.resources import files

from watchdog.foundation.errors import PermanentError

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# The table recording what has been applied; the runner creates it, not a migration.
SCHEMA_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " applied_at {real} NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    """One schema change: its version number, file name and SQL text."""

    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """Every migration shipped for ``dialect`` ("sqlite" or "postgres"), oldest first."""
    folder = files("watchdog.store").joinpath("migrations", dialect)
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if not entry.is_file() or match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise PermanentError(f"two {dialect} migrations have version {version}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    if not found:
        raise PermanentError(f"no {dialect} migrations found in {folder}")
    return [found[v] for v in sorted(found)]


def pending(migrations: list[Migration], applied: Collection[int]) -> list[Migration]:
    """The migrations not yet applied, in order."""
    return [m for m in migrations if m.version not in applied]


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (for drivers that run one at a time).

    Comment lines are dropped and a statement ends with ``;`` at the end of a line;
    migration files keep to that (no triggers or semicolons inside string literals).
    """
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements: list[str] = []
    current: list[str] = []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]
