"""The WindowStore contract, run on SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Protocol

import pytest

from tests.integration.store.conftest import event, window
from watchdog.foundation.errors import Conflict, NotFound
from watchdog.foundation.model import EventKind, WindowPhase
from watchdog.store.base import (
    EventStore,
    WindowStore,
)
from watchdog.store.feed import PhaseJournal

pytestmark = pytest.mark.integration


async def ids(store: WindowStore, **filters: Any) -> list[str]:
    return [w.id for w in await store.list_windows(**filters)]


async def test_insert_and_get_round_trip(store: WindowStore) -> None:
    w = window("w1")
    await store.insert_window(w)
    assert await store.get_window("w1") == w


async def test_shadow_and_confirm_for_round_trip(store: WindowStore) -> None:
    w = replace(window("w1"), shadow=True, confirm_for=300.0)
    await store.insert_window(w)
    assert await store.get_window("w1") == w
    assert await store.set_phase("w1", WindowPhase.CONFIRMING, at=2_000.0)
    confirming = await store.get_window("w1")
    assert confirming is not None and confirming.confirm_until == 2_300.0


async def test_get_unknown_window_is_none(store: WindowStore) -> None:
    assert await store.get_window("nope") is None


async def test_insert_duplicate_id_conflicts(store: WindowStore) -> None:
    await store.insert_window(window("w1"))
    with pytest.raises(Conflict):
        await store.insert_window(window("w1"))


async def test_list_windows_newest_first_with_filters(store: WindowStore) -> None:
    await store.insert_window(window("a", started_at=100))
    await store.insert_window(window("b", started_at=300, service="worker"))
    await store.insert_window(window("c", started_at=200, environment="staging"))
    await store.insert_window(window("d", started_at=400, phase=WindowPhase.PASSED))

    assert await ids(store) == ["d", "b", "c", "a"]
    assert await ids(store, service="api") == ["d", "c", "a"]
    assert await ids(store, environment="staging") == ["c"]
    assert await ids(store, phases={WindowPhase.PASSED}) == ["d"]
    watching = [WindowPhase.WATCHING, WindowPhase.HELD]
    assert await ids(store, service="api", environment="prod", phases=watching) == ["a"]
    assert await ids(store, phases=[]) == []
    assert await ids(store, limit=2) == ["d", "b"]


async def test_set_phase_is_compare_and_set(store: WindowStore) -> None:
    await store.insert_window(window("w1"))

    moved = await store.set_phase(
        "w1", WindowPhase.ROLLING_BACK, at=1_100, reason="5xx", expected=[WindowPhase.WATCHING]
    )
    assert moved
    got = await store.get_window("w1")
    assert got is not None
    assert (got.phase, got.updated_at, got.reason) == (WindowPhase.ROLLING_BACK, 1_100, "5xx")

    lost = await store.set_phase(
        "w1", WindowPhase.PASSED, at=1_200, expected=[WindowPhase.WATCHING, WindowPhase.HELD]
    )
    assert not lost
    assert await store.get_window("w1") == got

    assert await store.set_phase("w1", WindowPhase.ROLLED_BACK, at=1_300)
    got = await store.get_window("w1")
    assert got is not None and got.phase is WindowPhase.ROLLED_BACK
    assert not await store.set_phase("nope", WindowPhase.PASSED, at=1_400)


async def test_baselines_round_trip(store: WindowStore) -> None:
    await store.insert_window(window("w1"))
    baselines = {"p95": {'{route="/a"}': 0.25, '{route="/b"}': math.inf}, "errors": {"{}": 0.0}}
    await store.set_baselines("w1", baselines, at=1_100)
    got = await store.get_window("w1")
    assert got is not None
    assert got.baselines == baselines
    with pytest.raises(NotFound):
        await store.set_baselines("nope", baselines, at=1_100)


class PhaseJournalStore(WindowStore, EventStore, PhaseJournal, Protocol):
    """The window role with the journal it writes a phase change into."""


async def test_a_phase_change_and_its_event_are_written_together_or_not_at_all(
    store: PhaseJournalStore,
) -> None:
    await store.insert_window(window("w1", phase=WindowPhase.ROLLING_BACK))
    told = event("w1", 1_100.0, EventKind.ROLLBACK_SUCCEEDED, actor="rule:r1")
    rolling = [WindowPhase.ROLLING_BACK]
    first = await store.set_phase_journaled(
        "w1", WindowPhase.ROLLED_BACK, told, expected=rolling, reason=None
    )
    assert first is not None and first.seq is not None
    got = await store.get_window("w1")
    assert got is not None and (got.phase, got.updated_at) == (WindowPhase.ROLLED_BACK, 1_100.0)
    # a second recorder of the same outcome: not in the expected phase, nothing written
    again = await store.set_phase_journaled("w1", WindowPhase.ROLLED_BACK, told, expected=rolling)
    assert again is None
    assert await store.list_events("w1") == [first]
