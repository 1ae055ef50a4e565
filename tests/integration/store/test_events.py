"""The EventStore contract: the append-only journal, run on SQLite and PostgreSQL (fixtures
in conftest.py)."""

from __future__ import annotations

from typing import Protocol

import pytest

from tests.integration.store.conftest import event, window
from watchdog.foundation.errors import NotFound
from watchdog.foundation.model import EventKind
from watchdog.store.base import (
    EventStore,
    WindowStore,
)
from watchdog.store.feed import JournalFeed


class JournalFeedStore(EventStore, JournalFeed, Protocol):
    """The journal in both roles: appended per window, followed across windows."""


pytestmark = pytest.mark.integration


async def test_events_append_in_order_and_after_seq(
    store: EventStore, windows: WindowStore
) -> None:
    await windows.insert_window(window("w1"))
    await windows.insert_window(window("w2"))
    a = await store.append_event(event("w1", 1.0, EventKind.WINDOW_OPENED, version="v2"))
    other = await store.append_event(event("w2", 1.5))
    b = await store.append_event(event("w1", 2.0, values=[1.0, 2.0], nested={"k": None}))
    c = await store.append_event(event("w1", 3.0, EventKind.RULE_FIRING))

    assert a.seq is not None and b.seq is not None and c.seq is not None
    assert other.seq is not None
    assert a.seq < other.seq < b.seq < c.seq
    assert await store.list_events("w1") == [a, b, c]
    assert await store.list_events("w1", after_seq=a.seq) == [b, c]
    assert await store.list_events("w1", after_seq=c.seq) == []
    assert b.data == {"values": [1.0, 2.0], "nested": {"k": None}}


async def test_event_for_unknown_window_is_refused(store: EventStore) -> None:
    with pytest.raises(NotFound):
        await store.append_event(event("nope", 1.0))


async def test_events_after_a_seq_across_windows_by_kind_bounded(
    store: JournalFeedStore, windows: WindowStore
) -> None:
    assert await store.last_event_seq() == 0
    assert await store.list_events_after(0, kinds=[EventKind.RULE_FIRING], limit=10) == []
    await windows.insert_window(window("w1"))
    await windows.insert_window(window("w2"))
    a = await store.append_event(event("w1", 1.0, EventKind.RULE_FIRING, severity="critical"))
    await store.append_event(event("w2", 2.0, EventKind.RULE_PENDING))
    b = await store.append_event(event("w2", 3.0, EventKind.ACKNOWLEDGED))
    c = await store.append_event(event("w1", 4.0, EventKind.RULE_FIRING))
    last = await store.append_event(event("w1", 5.0, EventKind.RULE_RESOLVED))
    assert a.seq is not None and b.seq is not None and last.seq is not None

    assert await store.last_event_seq() == last.seq
    wanted = {EventKind.RULE_FIRING, EventKind.ACKNOWLEDGED}
    assert await store.list_events_after(0, kinds=wanted, limit=10) == [a, b, c]
    assert await store.list_events_after(0, kinds=wanted, limit=2) == [a, b]
    assert await store.list_events_after(b.seq, kinds=wanted, limit=10) == [c]
    assert await store.list_events_after(a.seq - 1, kinds=[EventKind.ACKNOWLEDGED], limit=10) == [b]
    assert await store.list_events_after(last.seq, kinds=wanted, limit=10) == []
    assert await store.list_events_after(0, kinds=[], limit=10) == []
