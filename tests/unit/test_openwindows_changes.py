"""The view's reads: between two full reads (every FULL seconds, on invalidate, when too
much changed) it reads only the windows changed since a little before its last read, and
still sees what another replica sharing the store does within one REFRESH. A real SQLite
file (two handles: two replicas), a fake clock; nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest

from tests.servers.common import HANG_GUARD
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Window, WindowPhase, new_id
from watchdog.lifecycle import openwindows
from watchdog.lifecycle.openwindows import FULL, REFRESH, WindowView
from watchdog.store.sqlite import SqliteStore

N = 50


class Counting:
    """The real store, counting the view's reads and the rows they returned."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.full_reads = 0
        self.change_reads: list[int] = []  # rows each read of changes returned
        self.gate: asyncio.Event | None = None  # set: a read of changes waits for it
        self.entered = asyncio.Event()
        self.fail = False

    async def list_windows(self, *, phases: Collection[WindowPhase], limit: int) -> list[Window]:
        self.full_reads += 1
        return await self.store.list_windows(phases=phases, limit=limit)

    async def list_windows_changed(self, since: float, *, limit: int) -> list[Window]:
        if self.fail:
            raise ConnectionError("store down")
        found = await self.store.list_windows_changed(since, limit=limit)
        self.change_reads.append(len(found))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """This replica's store and another replica's, on one SQLite file."""
    path = str(tmp_path / "watchdog.db")
    mine, theirs = SqliteStore(path), SqliteStore(path)
    await mine.open()
    await theirs.open()
    yield mine, theirs
    await theirs.close()
    await mine.close()


def window(clock: FakeClock, service: str = "api") -> Window:
    now = clock.now()
    deployment = Deployment(service, "prod", "v2", "v1")
    return Window(new_id(), deployment, WindowPhase.WATCHING, now, now + 3600, now)


async def settled(
    stores: tuple[SqliteStore, SqliteStore],
) -> tuple[FakeClock, Counting, WindowView, list[Window]]:
    """N windows open, read whole once, then REFRESH steps until their writes are older
    than any read of changes looks back."""
    clock = FakeClock()
    counting = Counting(stores[0])
    view = WindowView(counting, clock, skew=5.0)  # type: ignore[arg-type]
    opened = [window(clock, f"svc{i}") for i in range(N)]
    for w in opened:
        await stores[0].insert_window(w)
    assert len(await view.current()) == N
    for _ in range(int(40 / REFRESH)):
        clock.advance(REFRESH)
        await view.current()
    counting.change_reads.clear()
    return clock, counting, view, opened


async def test_a_refresh_reads_only_what_changed_and_sees_another_replica(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    clock, counting, view, opened = await settled(stores)
    theirs = stores[1]
    clock.advance(REFRESH)
    assert len(await view.current()) == N
    assert counting.change_reads == [0]  # nothing changed: no row read
    held, aborted, new = opened[3], opened[7], window(clock, "web")
    await theirs.set_phase(held.id, WindowPhase.HELD, at=clock.now())
    await theirs.set_phase(aborted.id, WindowPhase.ABORTED, at=clock.now())
    await theirs.insert_window(new)
    clock.advance(REFRESH)  # within one REFRESH
    seen = {w.id: w for w in await view.current()}
    assert counting.change_reads == [0, 3]  # only the three rows that changed
    assert seen[held.id].phase is WindowPhase.HELD
    assert aborted.id not in seen
    assert seen[new.id] == new
    assert len(seen) == N
    assert counting.full_reads == 1  # the one at the start


async def test_a_full_read_every_full_seconds_sees_what_a_skewed_clock_stamped(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    clock, counting, view, opened = await settled(stores)
    start = clock.now() - 40  # when the first full read ran (settled stepped 40 s)
    # a replica whose clock is far behind: its write looks older than any look-back
    await stores[1].set_phase(opened[0].id, WindowPhase.ABORTED, at=clock.now() - 3600)
    while clock.now() + REFRESH < start + FULL:
        clock.advance(REFRESH)
        assert opened[0].id in {w.id for w in await view.current()}
    assert counting.full_reads == 1
    clock.advance(REFRESH)
    assert opened[0].id not in {w.id for w in await view.current()}
    assert counting.full_reads == 2


async def test_invalidate_and_too_many_changes_read_whole(
    stores: tuple[SqliteStore, SqliteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, counting, view, opened = await settled(stores)
    view.invalidate()
    await view.current()  # at once, not REFRESH later
    assert counting.full_reads == 2
    monkeypatch.setattr(openwindows, "CHANGED", 3)
    for w in opened[:3]:
        await stores[1].set_phase(w.id, WindowPhase.HELD, at=clock.now())
    clock.advance(REFRESH)
    seen = {w.id: w for w in await view.current()}
    assert counting.change_reads == [3] and counting.full_reads == 3
    assert all(seen[w.id].phase is WindowPhase.HELD for w in opened[:3])


async def test_what_changed_while_a_read_failed_is_read_after_it(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    clock, counting, view, opened = await settled(stores)
    view.invalidate()
    await view.current()  # read whole: the next one is FULL seconds away
    counting.fail = True
    for step in range(8):  # 40 s: further back than a read of changes looks from now
        if step == 1:
            await stores[1].set_phase(opened[1].id, WindowPhase.ABORTED, at=clock.now())
        clock.advance(REFRESH)
        with pytest.raises(ConnectionError):
            await view.current()
    counting.fail = False
    clock.advance(REFRESH)
    assert opened[1].id not in {w.id for w in await view.current()}
    assert counting.full_reads == 2  # seen by a read of changes, not a full one


async def test_a_change_this_process_makes_during_a_read_wins_over_it(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    clock, counting, view, opened = await settled(stores)
    mine = opened[5]
    await stores[1].set_phase(mine.id, WindowPhase.HELD, at=clock.now())
    counting.gate, counting.entered = asyncio.Event(), asyncio.Event()
    clock.advance(REFRESH)
    reading = asyncio.create_task(view.current())
    # the read returned the window held...
    await asyncio.wait_for(counting.entered.wait(), HANG_GUARD)
    await stores[0].set_phase(mine.id, WindowPhase.ABORTED, at=clock.now())
    view.drop(mine.id)  # ...and this process aborted it meanwhile
    counting.gate.set()
    assert mine.id not in {w.id for w in await reading}
