"""The store contract suites, one per role (tests/integration/store/test_*.py), each run on
SQLite (a real WAL file) and a real PostgreSQL: the fixtures and helpers they share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.store.base import WindowStore
from watchdog.store.postgres import PostgresStore
from watchdog.store.sqlite import SqliteStore

AnyStore = SqliteStore | PostgresStore
Connect = Callable[[], Awaitable[AnyStore]]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Callable[[], AnyStore]]:
    """The backend's name and a factory of unopened stores sharing one database."""
    if request.param == "sqlite":
        path = str(tmp_path / "watchdog.db")
        return "sqlite", lambda: SqliteStore(path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    return "postgres", lambda: PostgresStore(dsn)


@pytest.fixture
async def connect(backend: tuple[str, Callable[[], AnyStore]]) -> AsyncIterator[Connect]:
    """Open another store on the same database; all are closed after the test."""
    opened: list[AnyStore] = []

    async def _connect() -> AnyStore:
        store = backend[1]()
        await store.open()
        opened.append(store)
        return store

    yield _connect
    for store in opened:
        await store.close()


@pytest.fixture
async def store(connect: Connect) -> AnyStore:
    """An open store on an empty database."""
    return await connect()


@pytest.fixture
def windows(store: AnyStore) -> WindowStore:
    """The same store in its window role: tests of other roles create their windows."""
    return store


def window(
    wid: str,
    *,
    service: str = "api",
    environment: str = "prod",
    started_at: float = 1_000.0,
    phase: WindowPhase = WindowPhase.WATCHING,
) -> Window:
    deployment = Deployment(
        service=service,
        environment=environment,
        version="v2",
        previous_version="v1",
        labels={"team": "core", "region": "eu"},
        plan="default",
    )
    return Window(
        id=wid,
        deployment=deployment,
        phase=phase,
        started_at=started_at,
        ends_at=started_at + 1800,
        updated_at=started_at,
    )


def event(wid: str, at: float, kind: EventKind = EventKind.RULE_PENDING, **data: object) -> Event:
    return Event(window_id=wid, at=at, kind=kind, message=f"at {at}", rule="r1", data=data)
