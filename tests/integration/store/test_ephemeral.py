"""The SeenOnce and Sessions contracts (issue 13 items 4 and 9): keys seen once and status
sessions, run on SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.store.conftest import AnyStore, Connect
from watchdog.store.ephemeral import PRUNE_BATCH, SessionCaps

pytestmark = pytest.mark.integration


async def test_a_key_is_new_once_until_it_expires_also_for_another_replica(
    store: AnyStore, connect: Connect
) -> None:
    other = await connect()  # a second replica, or the process after a restart
    assert await store.seen_once("sig-a", now=1000.0, ttl=300) is False
    assert await store.seen_once("sig-a", now=1001.0, ttl=300) is True
    assert await other.seen_once("sig-a", now=1299.0, ttl=300) is True
    assert await other.seen_once("sig-b", now=1001.0, ttl=300) is False
    # Past its expiry the key is new again (the timestamp check refuses it anyway).
    assert await other.seen_once("sig-a", now=1300.0, ttl=300) is False
    assert await store.seen_once("sig-a", now=1301.0, ttl=300) is True


async def test_concurrent_sightings_of_one_key_let_exactly_one_through(
    store: AnyStore, connect: Connect
) -> None:
    stores = [store, *[await connect() for _ in range(3)]]
    results = await asyncio.gather(
        *(s.seen_once("sig-race", now=50.0, ttl=300) for s in stores for _ in range(5))
    )
    assert results.count(False) == 1


async def test_expired_keys_are_pruned_in_bounded_batches(store: AnyStore) -> None:
    for i in range(PRUNE_BATCH + 10):
        await store.seen_once(f"old-{i}", now=0.0, ttl=1)
    await store.seen_once("fresh-1", now=100.0, ttl=300)
    assert await _count(store, "seen_once") == 10 + 1  # one batch pruned
    await store.seen_once("fresh-2", now=100.0, ttl=300)
    assert await _count(store, "seen_once") == 2


async def test_sessions_expire_server_side_and_can_be_revoked(
    store: AnyStore, connect: Connect
) -> None:
    other = await connect()
    keep = SessionCaps(per_tag=10, total=20)
    await store.create_session("h1", token_tag="t", now=0.0, expires_at=100.0, keep=keep)
    await store.create_session("h2", token_tag="t", now=0.0, expires_at=100.0, keep=keep)
    assert await other.session_tag("h1", now=99.0) == "t"
    assert await other.session_tag("h1", now=100.0) is None  # expired
    assert await other.session_tag("nope", now=1.0) is None
    assert await other.revoke_sessions("h1") == 1
    assert await store.session_tag("h1", now=1.0) is None
    assert await store.session_tag("h2", now=1.0) == "t"
    await store.create_session("h3", token_tag="t", now=0.0, expires_at=100.0, keep=keep)
    assert await store.revoke_sessions() == 2
    assert await store.session_tag("h2", now=1.0) is None
    assert await store.session_tag("h3", now=1.0) is None


async def test_sessions_are_capped_per_token_and_in_all_the_oldest_ending_first(
    store: AnyStore, connect: Connect
) -> None:
    """Issue 25: one token holder made 13.6k sessions in 20 s."""
    other = await connect()  # the caps hold across replicas: they are counted in the store
    keep = SessionCaps(per_tag=3, total=5)
    for i in range(6):  # token a: six sign-ins, one a second
        replica = store if i % 2 else other
        await replica.create_session(f"a{i}", token_tag="a", now=i, expires_at=1e9, keep=keep)
    alive = [h for h in (f"a{i}" for i in range(6)) if await store.session_tag(h, now=10)]
    assert alive == ["a3", "a4", "a5"]
    for i in range(3):  # token b: its sessions never end token a's while within its cap...
        await store.create_session(f"b{i}", token_tag="b", now=10 + i, expires_at=1e9, keep=keep)
    # ...but the total (stale tags included) ends the oldest of all: a3.
    assert [await store.session_tag(h, now=20) for h in ("a3", "a4", "b0", "b2")] == [
        None, "a", "b", "b",
    ]  # fmt: skip
    assert await _count(store, "status_sessions") == 5


async def _count(store: AnyStore, table: str) -> int:
    sql = f"SELECT count(*) FROM {table}"
    if hasattr(store, "_pool"):
        async with store._conn() as conn:  # type: ignore[union-attr]
            return int(await conn.fetchval(sql))
    async with store._session() as db:  # type: ignore[union-attr]
        rows = list(await db.execute_fetchall(sql))
    return int(rows[0][0])
