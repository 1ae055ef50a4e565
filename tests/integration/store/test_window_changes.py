"""The WindowChanges contract (windows by when they last changed), run on SQLite and
PostgreSQL (fixtures in conftest.py): every write that changes a window stamps it."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import pytest

from tests.integration.store.conftest import Connect, window
from watchdog.foundation.model import WindowPhase
from watchdog.store.base import WindowStore
from watchdog.store.feed import WindowChanges

pytestmark = pytest.mark.integration


class ChangesStore(WindowStore, WindowChanges, Protocol):
    pass


async def changed(store: ChangesStore, since: float, limit: int = 10) -> list[str]:
    return [w.id for w in await store.list_windows_changed(since, limit=limit)]


async def test_windows_changed_since_any_phase_oldest_first_bounded(
    store: ChangesStore,
) -> None:
    assert await changed(store, 0) == []
    for wid, at in (("w3", 1_200.0), ("w1", 1_000.0), ("w2", 1_100.0)):
        await store.insert_window(window(wid, started_at=at))
    assert await changed(store, 0) == ["w1", "w2", "w3"]
    assert await changed(store, 1_100) == ["w2", "w3"]  # at or after
    assert await changed(store, 0, limit=2) == ["w1", "w2"]
    assert await changed(store, 1_201) == []
    got = await store.list_windows_changed(1_200, limit=10)
    assert got == [await store.get_window("w3")]  # decoded whole

    assert await store.set_phase("w1", WindowPhase.ABORTED, at=1_300)
    assert await changed(store, 1_250) == ["w1"]
    (aborted,) = await store.list_windows_changed(1_250, limit=10)
    assert aborted.phase is WindowPhase.ABORTED and aborted.updated_at == 1_300


async def test_every_write_that_changes_a_window_is_seen_by_another_handle(
    store: ChangesStore, connect: Connect
) -> None:
    other = await connect()  # another replica on the same database
    await other.insert_window(window("w1", started_at=1_000))
    assert await changed(store, 1_000) == ["w1"]

    await other.set_baselines("w1", {"p95": {"{}": 0.5}}, at=1_100)
    (got,) = await store.list_windows_changed(1_050, limit=10)
    assert got.baselines == {"p95": {"{}": 0.5}} and got.updated_at == 1_100

    assert await other.set_phase("w1", WindowPhase.HELD, at=1_200, reason="hold")
    (held,) = await store.list_windows_changed(1_150, limit=10)
    assert held == replace(got, phase=WindowPhase.HELD, updated_at=1_200, reason="hold")
    # a compare-and-set that does not move the window changes nothing
    assert not await other.set_phase(
        "w1", WindowPhase.PASSED, at=1_300, expected={WindowPhase.WATCHING}
    )
    assert await changed(store, 1_250) == []
