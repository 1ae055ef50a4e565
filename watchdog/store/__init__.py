"""Durable state behind one Protocol: SQLite (embedded default) or PostgreSQL (HA).

:func:`open_store` picks the implementation from a URL; it does no I/O, the caller
awaits ``store.open()`` (which also applies pending schema migrations).
"""

from __future__ import annotations

from watchdog.foundation.errors import ConfigError
from watchdog.store.base import Store

__all__ = ["Store", "open_store"]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")
_EXPECTED = (
    "expected sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:"
    " or postgresql://user@host:port/dbname"
)


def open_store(url: str) -> Store:
    """The store a URL names, not yet opened; :class:`ConfigError` for anything else."""
    if url.startswith(_SQLITE):
        from watchdog.store.sqlite import SqliteStore

        return SqliteStore(_sqlite_path(url))
    if url.startswith(_POSTGRES):
        from watchdog.store.postgres import PostgresStore

        return PostgresStore(url)
    scheme = url.split(":", 1)[0] if ":" in url else url[:20]
    raise ConfigError([f"store URL: unsupported scheme {scheme!r}; {_EXPECTED}"])


def _sqlite_path(url: str) -> str:
    path = url[len(_SQLITE) :]
    if not path or path.endswith("/"):
        raise ConfigError([f"store URL {url!r} names no database file; {_EXPECTED}"])
    if "?" in path or "#" in path:
        raise ConfigError([f"store URL {url!r}: query parameters are not supported"])
    return path
