"""Start points for counter-style values, kept per (window, rule) inside a source.

A counter (``pg_stat_statements.total_exec_time``, ``pg_stat_database.xact_rollback``,
a log file's matching lines) only means something as a change. The first sample a
source takes for a (window, rule) records the start point; later samples are judged on
the change since it (or since the previous sample). The points live in memory: after a
restart the first sample records a new start point, so a change that happened while the
service was down is not seen.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_KEYS = 10_000  # bound the memory closed windows can hold on to

MAX_COUNT = float(2**53)
"""The largest counter reading believed. Past 2**53 a float64 cannot count by ones, so
no real counter gets there; one reading of 1.7e308 taken as a count made every later
increase look like a reset and a 50 % error rate read "ok" (issue 25)."""


def believable(value: float) -> bool:
    """Whether a counter reading can be a count: finite, ``0 … MAX_COUNT`` (NaN is not).

    A reading that is not is skipped where it is read: the series keeps its last
    reading, so the next believable one counts the whole change since.
    """
    return 0.0 <= value <= MAX_COUNT


def sane(values: tuple[float, ...]) -> bool:
    """Whether every number in a row of readings is finite and within ``±MAX_COUNT``
    (rows may hold gauges, which can be negative)."""
    return all(math.isfinite(v) and abs(v) <= MAX_COUNT for v in values)


class StartPoints(Generic[T]):
    """A bounded map from (window, rule) to whatever a source remembers there."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._data: OrderedDict[Hashable, T] = OrderedDict()
        self._max = max_keys

    def get(self, key: Hashable) -> T | None:
        """What was stored for ``key``, if anything."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: T) -> None:
        """Store ``value``; the least recently used key goes when the map is full."""
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)


def deltas(
    current: Mapping[str, tuple[float, ...]], base: Mapping[str, tuple[float, ...]]
) -> dict[str, tuple[float, ...]]:
    """Per series, ``current - base``; a series new since ``base`` counts from zero.

    A counter that went down was reset (``pg_stat_statements_reset()``, a restart): the
    change is then counted from zero too, like Prometheus' ``increase()``. A row that is
    not :func:`sane` has no change (see :func:`carried` for what is kept of it).
    """
    out: dict[str, tuple[float, ...]] = {}
    for key, now in current.items():
        if not sane(now):
            continue
        then = base.get(key, tuple(0.0 for _ in now))
        if any(n < t for n, t in zip(now, then, strict=False)):
            then = tuple(0.0 for _ in now)
        out[key] = tuple(n - t for n, t in zip(now, then, strict=False))
    return out


def carried(
    current: Mapping[str, tuple[float, ...]], previous: Mapping[str, tuple[float, ...]]
) -> dict[str, tuple[float, ...]]:
    """``current`` to remember, a row that is not :func:`sane` replaced by its previous
    reading (left out when there was none): a start point is never an absurd value."""
    out: dict[str, tuple[float, ...]] = {}
    for key, now in current.items():
        if sane(now):
            out[key] = now
        elif key in previous:
            out[key] = previous[key]
    return out
