"""The ActionStore contract: one claim ever, fencing tokens, run on SQLite and PostgreSQL
(fixtures in conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.store.conftest import Connect, window
from watchdog.foundation.errors import FencedOut, NotFound
from watchdog.foundation.model import ActionStatus
from watchdog.store.base import ActionStore, RollbackRequest

pytestmark = pytest.mark.integration


async def test_claim_action_has_exactly_one_winner(connect: Connect) -> None:
    # Two stores on one database: separate connections (and pools), one action log.
    stores = [await connect(), await connect()]
    await stores[0].insert_window(window("w1"))

    claims = [
        stores[i % 2].claim_action("w1", "rollback", token=1, actor=f"actor-{i}", at=float(i))
        for i in range(20)
    ]
    results = await asyncio.gather(*claims)

    assert results.count(True) == 1
    winner = f"actor-{results.index(True)}"
    record = await stores[1].get_action("w1", "rollback")
    assert record is not None
    assert (record.actor, record.status, record.token) == (winner, ActionStatus.CLAIMED, 1)


async def test_stale_fencing_token_is_refused_and_writes_nothing(store: ActionStore) -> None:
    assert await store.claim_action("w1", "rollback", token=5, actor="leader-b", at=1.0)

    with pytest.raises(FencedOut) as refused:
        await store.claim_action("w2", "rollback", token=3, actor="leader-a", at=2.0)
    assert (refused.value.token, refused.value.newest) == (3, 5)
    assert await store.get_action("w2", "rollback") is None

    assert await store.claim_action("w2", "rollback", token=5, actor="leader-b", at=3.0)
    assert await store.claim_action("w3", "rollback", token=7, actor="leader-c", at=4.0)
    with pytest.raises(FencedOut):
        await store.claim_action("w4", "rollback", token=5, actor="leader-b", at=5.0)
    assert await store.get_action("w4", "rollback") is None


async def test_each_issued_token_exceeds_every_earlier_one(store: ActionStore) -> None:
    # A Redis that forgot its counter offers 1 again: the store issues above what it saw.
    assert await store.claim_action("w1", "rollback", token=21, actor="old", at=1.0)
    assert await store.advance_fence(1) == 22
    assert await store.advance_fence(1) == 23
    assert await store.advance_fence(40) == 40  # a counter ahead of the store is kept
    # Issuing alone deposes the previous leader, before the new one writes anything.
    with pytest.raises(FencedOut):
        await store.claim_action("w2", "rollback", token=23, actor="deposed", at=2.0)
    assert await store.claim_action("w2", "rollback", token=40, actor="leader", at=3.0)


async def test_a_deposed_leader_cannot_rewrite_the_outcome(store: ActionStore) -> None:
    assert await store.claim_action("w1", "rollback", token=3, actor="old", at=1.0)
    new = await store.advance_fence(1)  # another replica takes over
    await store.finish_action(
        "w1", "rollback", status=ActionStatus.SUCCEEDED, at=2.0, detail=None, token=new
    )
    with pytest.raises(FencedOut):
        await store.finish_action(
            "w1", "rollback", status=ActionStatus.FAILED, at=3.0, detail="lost", token=3
        )
    record = await store.get_action("w1", "rollback")
    assert record is not None
    assert (record.status, record.finished_at, record.detail) == (
        ActionStatus.SUCCEEDED,
        2.0,
        None,
    )


async def test_rollback_requests_are_kept_once_and_taken_once(connect: Connect) -> None:
    a, b = await connect(), await connect()
    first = RollbackRequest("w1", "api", "broken", None, at=2.0)
    assert await a.request_rollback(first)
    assert not await b.request_rollback(RollbackRequest("w1", "slack:U1", None, None, at=3.0))
    assert await b.request_rollback(RollbackRequest("w0", "slack:U2", None, "slack:U2", at=1.0))
    taken = await asyncio.gather(a.take_rollback_requests(), b.take_rollback_requests())
    everything = sorted([*taken[0], *taken[1]], key=lambda r: r.at)
    assert [r.window_id for r in everything] == ["w0", "w1"]  # each taken by one store
    assert everything[1] == first and everything[0].approved_by == "slack:U2"
    assert await a.take_rollback_requests() == []


async def test_claim_is_once_ever_even_with_a_newer_token(store: ActionStore) -> None:
    assert await store.claim_action("w1", "rollback", token=1, actor="a", at=1.0)
    assert not await store.claim_action("w1", "rollback", token=2, actor="b", at=2.0)
    record = await store.get_action("w1", "rollback")
    assert record is not None and record.actor == "a"
    assert await store.claim_action("w1", "notify", token=2, actor="b", at=3.0)


async def test_finish_action_and_get_action(store: ActionStore) -> None:
    assert await store.get_action("w1", "rollback") is None
    assert await store.claim_action("w1", "rollback", token=4, actor="node-1", at=10.0)

    await store.finish_action(
        "w1", "rollback", status=ActionStatus.SUCCEEDED, at=12.5, detail="2 steps", token=4
    )

    record = await store.get_action("w1", "rollback")
    assert record is not None
    assert record.window_id == "w1" and record.action == "rollback"
    assert (record.status, record.token, record.actor) == (ActionStatus.SUCCEEDED, 4, "node-1")
    assert (record.claimed_at, record.finished_at, record.detail) == (10.0, 12.5, "2 steps")
    with pytest.raises(NotFound):
        await store.finish_action(
            "w1", "never", status=ActionStatus.FAILED, at=13.0, detail=None, token=4
        )
