"""The due queue: a tick takes what is due, earliest first, and nothing else."""

from __future__ import annotations

import pytest

from watchdog.lifecycle.schedule import COMPACT_AT, DueQueue, next_due


def taken(queue: DueQueue, now: float) -> list[tuple[float, tuple[str, str]]]:
    """Every key due by ``now``, as a tick takes them (earliest first, off the queue)."""
    out = []
    while (entry := queue.pop_next(now)) is not None:
        out.append(entry)
    return out


def test_a_tick_takes_what_is_due_earliest_first_and_off_the_queue() -> None:
    queue = DueQueue()
    queue.put(("w1", "a"), 30.0)
    queue.put(("w2", "a"), 10.0)
    queue.put(("w1", "b"), 20.0)
    assert taken(queue, 25.0) == [(10.0, ("w2", "a")), (20.0, ("w1", "b"))]
    assert taken(queue, 25.0) == []  # taken: the caller puts back what runs again
    assert ("w2", "a") not in queue and queue.due_at(("w1", "a")) == 30.0


def test_a_rule_counts_as_due_a_quarter_second_early() -> None:
    queue = DueQueue()
    queue.put(("w", "r"), 10.0)
    assert taken(queue, 9.7) == []
    assert taken(queue, 9.8) == [(10.0, ("w", "r"))]


def test_a_moved_or_dropped_key_is_never_taken_at_its_old_time() -> None:
    queue = DueQueue()
    queue.put(("w", "moved"), 5.0)
    queue.put(("w", "moved"), 50.0)
    queue.put(("w", "dropped"), 5.0)
    queue.drop([("w", "dropped")])
    assert taken(queue, 10.0) == []
    assert taken(queue, 50.0) == [(50.0, ("w", "moved"))]


def test_the_heap_stays_bounded_by_the_keys_in_force() -> None:
    """A key moved a million times leaves no million stale entries behind."""
    queue = DueQueue()
    for i in range(20 * COMPACT_AT):
        queue.put(("w", "r"), float(i))
    assert len(queue) == 1
    assert len(queue._heap) <= 2 + COMPACT_AT
    assert taken(queue, 1e9) == [(float(20 * COMPACT_AT - 1), ("w", "r"))]


@pytest.mark.parametrize(
    ("due", "now", "interval", "expected"),
    [
        (None, 100.0, 15.0, 115.0),  # first run: from now
        (100.0, 100.4, 15.0, 115.0),  # a late tick keeps the grid
        (100.0, 99.8, 15.0, 115.0),  # an early one too
        (100.0, 115.0, 15.0, 130.0),  # a whole interval behind: a new grid from now
        (0.0, 100.0, 15.0, 115.0),  # due at once (new window) is "behind"
    ],
)
def test_next_due_keeps_each_rule_on_its_own_grid(
    due: float | None, now: float, interval: float, expected: float
) -> None:
    assert next_due(due, now, interval) == expected
