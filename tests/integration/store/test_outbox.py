"""The OutboxStore and ThreadStore contracts: notifications stored before sending, channel
references, run on SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import pytest

from tests.integration.store.conftest import Connect
from watchdog.store.base import (
    OutboxItem,
    OutboxStatus,
    OutboxStore,
    ThreadStore,
)

pytestmark = pytest.mark.integration


def note(wid: str, seq: int, channel: str = "slack", due: float = 10.0) -> OutboxItem:
    return OutboxItem(wid, channel, seq, f'{{"seq": {seq}}}', due_at=due, created_at=5.0)


async def test_outbox_enqueue_skips_duplicates_and_lists_oldest_first(store: OutboxStore) -> None:
    added = await store.enqueue_notifications([note("w1", 2), note("w1", 1, "pagerduty")])
    assert added == 2
    # A retried enqueue of the same (channel, event) must not send twice.
    assert await store.enqueue_notifications([note("w1", 2), note("w1", 3)]) == 1
    pending = await store.pending_notifications()
    assert [(p.channel, p.event_seq) for p in pending] == [
        ("slack", 2),
        ("pagerduty", 1),
        ("slack", 3),
    ]
    assert pending[0].payload == '{"seq": 2}'
    assert pending[0].status is OutboxStatus.PENDING and pending[0].attempts == 0
    assert pending[0].id is not None


async def test_outbox_update_moves_items_out_of_pending(
    store: OutboxStore, connect: Connect
) -> None:
    await store.enqueue_notifications([note("w1", 1), note("w1", 2), note("w1", 3)])
    first, second, third = await store.pending_notifications()
    assert first.id is not None and second.id is not None and third.id is not None
    await store.update_notification(
        first.id, status=OutboxStatus.SENT, attempts=1, due_at=11.0, error=None
    )
    await store.update_notification(
        second.id, status=OutboxStatus.PENDING, attempts=2, due_at=40.0, error="HTTP 500"
    )
    await store.update_notification(
        third.id, status=OutboxStatus.FAILED, attempts=1, due_at=11.0, error="HTTP 400"
    )
    other = await connect()  # survives a restart: it is in the database
    pending = await other.pending_notifications()
    assert [(p.event_seq, p.attempts, p.due_at, p.last_error) for p in pending] == [
        (2, 2, 40.0, "HTTP 500")
    ]
    assert await other.pending_notifications(limit=0) == []


async def test_outbox_claim_is_one_owner_until_it_expires(
    store: OutboxStore, connect: Connect
) -> None:
    await store.enqueue_notifications([note("w1", 1), note("w1", 2)])
    first, second = await store.pending_notifications()
    assert first.id is not None and second.id is not None
    other = await connect()  # another replica on the same database
    assert await store.claim_notification(first.id, owner="a", now=10.0, until=25.0)
    assert not await other.claim_notification(first.id, owner="b", now=12.0, until=27.0)
    assert await store.claim_notification(first.id, owner="a", now=13.0, until=28.0)  # renew
    seen = (await other.pending_notifications())[0]
    assert seen.claimed_by == "a" and seen.claimed_until is not None
    # "a" froze: once its claim expires another replica may take the row. (PostgreSQL
    # times claims on its own clock, not the replicas': a zero-length claim stands for
    # the time that passed.)
    assert await store.claim_notification(first.id, owner="a", now=28.0, until=28.0)
    assert await other.claim_notification(first.id, owner="b", now=28.0, until=43.0)
    assert not await store.claim_notification(first.id, owner="a", now=29.0, until=44.0)
    # Recording the result releases the claim; a sent row cannot be claimed again.
    await other.update_notification(
        first.id, status=OutboxStatus.SENT, attempts=1, due_at=10.0, error=None
    )
    assert not await store.claim_notification(first.id, owner="a", now=30.0, until=45.0)
    await store.update_notification(
        second.id, status=OutboxStatus.PENDING, attempts=1, due_at=40.0, error="HTTP 500"
    )
    retried = await other.pending_notifications()
    assert [(r.event_seq, r.claimed_by, r.claimed_until) for r in retried] == [(2, None, None)]


async def test_thread_reference_first_one_wins(store: ThreadStore) -> None:
    assert await store.get_thread("w1", "slack") is None
    await store.set_thread("w1", "slack", "1700000000.000100")
    await store.set_thread("w1", "slack", "1700000000.000200")
    assert await store.get_thread("w1", "slack") == "1700000000.000100"
    assert await store.get_thread("w1", "pagerduty") is None
