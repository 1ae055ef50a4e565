"""The retention job: what it asks the store for, and what it does when the store fails."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import TransientError
from watchdog.plumbing.metrics import Metrics
from watchdog.store.retention import Retention


class RecordingStore:
    def __init__(self, answer: dict[str, int] | Exception) -> None:
        self.answer = answer
        self.calls: list[dict[str, float]] = []

    async def prune(self, *, before: float, windows: int, rows: int) -> dict[str, int]:
        self.calls.append({"before": before, "windows": windows, "rows": rows})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_one_bounded_batch_older_than_the_retention() -> None:
    clock = FakeClock(start=10_000_000.0)
    store = RecordingStore({"windows": 2, "events": 40, "alerts": 0})
    registry = CollectorRegistry()
    job = Retention(store, clock, keep=30 * 86400, batch=500, metrics=Metrics(registry))
    with capture_logs() as logs:
        done = await job.run_once()
    assert store.calls == [{"before": 10_000_000.0 - 30 * 86400, "windows": 10, "rows": 500}]
    assert done == {"windows": 2, "events": 40, "alerts": 0}
    assert [e["event"] for e in logs] == ["retention: pruned"]
    assert logs[0]["windows"] == 2 and "alerts" not in logs[0]  # only what was deleted
    assert registry.get_sample_value("watchdog_pruned_rows_total", {"table": "events"}) == 40
    clock.advance(60)
    await job.run_once()
    assert store.calls[1]["before"] == 10_000_060.0 - 30 * 86400


async def test_a_small_batch_still_prunes_a_window_and_quiet_runs_log_nothing() -> None:
    store = RecordingStore({"windows": 0, "alerts": 0})
    job = Retention(store, FakeClock(), keep=3600, batch=10)
    with capture_logs() as logs:
        await job.run_once()
    assert store.calls[0]["windows"] == 1 and store.calls[0]["rows"] == 10
    assert logs == []


async def test_a_failing_store_is_logged_and_tried_again_next_run() -> None:
    store = RecordingStore(TransientError("SQLite store busy"))
    job = Retention(store, FakeClock(), keep=3600, batch=10)
    with capture_logs() as logs:
        assert await job.run_once() == {}
    assert logs[0]["event"] == "retention: pruning failed, trying again next run"
    assert logs[0]["log_level"] == "warning" and logs[0]["error"] == "SQLite store busy"


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="keep must be > 0"):
        Retention(RecordingStore({}), FakeClock(), keep=0, batch=10)
