"""Opening stores: migrations applied once, store URLs, run on SQLite and PostgreSQL
(fixtures in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.store.conftest import AnyStore, Connect, window
from watchdog.foundation.errors import ConfigError
from watchdog.store import migrate, open_store
from watchdog.store.postgres import PostgresStore
from watchdog.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration


async def test_migrations_apply_once(
    backend: tuple[str, Callable[[], AnyStore]], connect: Connect
) -> None:
    first = await connect()
    await first.insert_window(window("kept"))
    await first.close()

    again = await connect()
    second = await connect()  # two open at once: neither re-applies anything
    expected = [m.version for m in migrate.load(backend[0])]
    assert await again.applied_migrations() == expected
    assert await second.applied_migrations() == expected
    assert await second.get_window("kept") is not None


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/watchdog.db", "data/watchdog.db"),
        ("sqlite:////var/lib/watchdog/state.db", "/var/lib/watchdog/state.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_open_store_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


@pytest.mark.parametrize("url", ["postgresql://u@h:5432/db", "postgres://u:p@h/db"])
def test_open_store_postgres_urls(url: str) -> None:
    assert isinstance(open_store(url), PostgresStore)


@pytest.mark.parametrize(
    "url", ["mysql://h/db", "sqlite://relative.db", "sqlite:///", "data.db", "sqlite:///x.db?a=1"]
)
def test_open_store_rejects_other_urls(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(url)
    assert info.value.problems


async def test_in_memory_sqlite_store_works() -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    try:
        await store.insert_window(window("m1"))
        assert await store.get_window("m1") == window("m1")
        assert await store.claim_action("m1", "rollback", token=0, actor="me", at=1.0)
    finally:
        await store.close()
