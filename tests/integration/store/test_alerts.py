"""The AlertStore contract: Alertmanager occurrences, run on SQLite and PostgreSQL
(fixtures in conftest.py)."""

from __future__ import annotations

import pytest

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.store.base import (
    AlertStore,
)

pytestmark = pytest.mark.integration


def am_alert(
    fp: str,
    starts_at: float = 100.0,
    status: AlertStatus = AlertStatus.FIRING,
    ends_at: float | None = None,
    **labels: str,
) -> Alert:
    return Alert(
        fingerprint=fp,
        starts_at=starts_at,
        status=status,
        labels={"alertname": "A", "service": "api", **labels},
        annotations={"summary": "ünïcode ok"},
        ends_at=ends_at,
        generator_url="http://prom/graph",
        receiver="watchdog",
    )


async def test_alerts_deduplicate_on_fingerprint_and_start(store: AlertStore) -> None:
    assert await store.record_alerts([am_alert("f1"), am_alert("f2")], at=1.0) == 2
    # the same group again, and the same group from an HA peer, plus one new alert
    assert await store.record_alerts([am_alert("f1"), am_alert("f2")], at=2.0) == 0
    assert await store.record_alerts([am_alert("f1"), am_alert("f3")], at=3.0) == 1
    # a re-firing of f1 is a new occurrence (new start)
    assert await store.record_alerts([am_alert("f1", starts_at=500.0)], at=4.0) == 1
    found = {(a.fingerprint, a.starts_at): a for a in await store.list_alerts()}
    assert set(found) == {("f1", 100.0), ("f2", 100.0), ("f3", 100.0), ("f1", 500.0)}
    f1 = found[("f1", 100.0)]
    assert (f1.notifications, f1.first_seen, f1.last_seen) == (3, 1.0, 3.0)
    assert f1.labels == {"alertname": "A", "service": "api"}
    assert f1.annotations == {"summary": "ünïcode ok"}
    assert f1.generator_url == "http://prom/graph" and f1.receiver == "watchdog"


async def test_resolved_alerts_stay_resolved_and_filter(store: AlertStore) -> None:
    await store.record_alerts([am_alert("f1"), am_alert("f2")], at=1.0)
    resolved = am_alert("f1", status=AlertStatus.RESOLVED, ends_at=150.0)
    await store.record_alerts([resolved], at=2.0)
    await store.record_alerts([am_alert("f1")], at=3.0)  # a late firing copy from a peer
    firing = await store.list_alerts(status=AlertStatus.FIRING)
    assert [a.fingerprint for a in firing] == ["f2"]
    done = await store.list_alerts(status=AlertStatus.RESOLVED)
    assert [(a.fingerprint, a.ends_at) for a in done] == [("f1", 150.0)]
    # active since 140: f1 (ended at 150) and f2 (firing); since 160: only f2
    assert {a.fingerprint for a in await store.list_alerts(active_since=140.0)} == {"f1", "f2"}
    assert [a.fingerprint for a in await store.list_alerts(active_since=160.0)] == ["f2"]
    assert len(await store.list_alerts(limit=1)) == 1


async def test_thousands_of_alerts_in_one_batch(store: AlertStore) -> None:
    batch = [am_alert(f"fp{i}", instance=str(i)) for i in range(3000)]
    assert await store.record_alerts(batch, at=1.0) == 3000
    assert await store.record_alerts(batch, at=2.0) == 0
    assert len(await store.list_alerts(limit=5000)) == 3000


async def test_alerts_are_found_by_their_labels_past_any_number_of_others(
    store: AlertStore,
) -> None:
    """Issue 25 M1: 10,000 newer alerts of other services change nothing for a window."""
    mine = am_alert("mine", 100.0, service="checkout", environment="prod")
    await store.record_alerts([mine], at=1.0)
    noise = [am_alert(f"n{i}", 200.0 + i, service=f"s{i % 50}") for i in range(10_000)]
    await store.record_alerts(noise, at=2.0)
    wanted = {"service": "checkout", "environment": "prod"}
    found = await store.list_alerts(labels=wanted, active_since=150.0, limit=10)
    assert [a.fingerprint for a in found] == ["mine"]
    assert await store.list_alerts(labels={**wanted, "alertname": "B"}) == []
    assert await store.list_alerts(labels=wanted, started_since=100.5) == []
    assert len(await store.list_alerts(labels={"service": "s7"}, limit=1000)) == 200


async def test_the_size_cap_drops_the_oldest_resolved_first(store: AlertStore) -> None:
    resolved = [
        am_alert(f"r{i}", 100.0 + i, AlertStatus.RESOLVED, ends_at=500.0, i=str(i))
        for i in range(3)
    ]
    firing = [am_alert(f"f{i}", 100.0 + i, i=str(i)) for i in range(3)]
    await store.record_alerts(resolved[:2] + firing[:1], at=1.0)
    await store.record_alerts(resolved[2:] + firing[1:], at=2.0)
    assert await store.cap_alerts(4) == 2  # r0 and r1: resolved and seen longest ago
    left = {a.fingerprint for a in await store.list_alerts()}
    assert left == {"r2", "f0", "f1", "f2"}
    assert await store.cap_alerts(2) == 2  # r2 next, then the longest unseen firing f0
    assert {a.fingerprint for a in await store.list_alerts()} == {"f1", "f2"}
    assert await store.list_alerts(labels={"i": "0"}) == []  # its labels went with it
    assert await store.cap_alerts(10) == 0
