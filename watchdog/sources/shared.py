"""One query per rule shared by every open window (``shared_by`` on a Prometheus rule).

A rule written as ``sum by (service) (...)`` with ``shared_by: service`` needs one
query for all windows instead of one per window: with 1,000 windows x 10 rules the
per-window queries alone took a whole core (bench/scale.py). Calls for the same
rendered query coalesce while one is in flight, and an answer taken at most
``max_age`` seconds from a caller's evaluation instant is reused; each window then
keeps the series whose label equals its service, looked up in an index built once per
answer (scanning the answer for each window cost 10,000 windows 10,000 x 10,000 label
reads per rule and round).

How long an answer is reused is the caller's ``max_age``: Prometheus' data changes
only once per scrape, so the source passes the scrape interval capped by the rule's
own interval (watchdog/sources/prometheus.py). Windows opened at different times
evaluate a rule in different seconds; with a fixed 1 s reuse, each of 10 rules' 10,000
series answers was queried and decoded every second (37 % of the process at 3,000
windows). The price is freshness: a window may judge an answer up to one scrape
interval older than its own evaluation instant, so detection is at most one scrape
later than with its own query, and never later than its own previous evaluation.
A failed answer is reused for at most :data:`ERROR_MAX_AGE`: Prometheus recovering
should not wait a whole scrape interval.

An answer may come as an instant vector's elements, each a labels dict and a value's
text (:func:`~watchdog.sources.promparse.compact`): each window's own series are built
when it asks (:func:`~watchdog.sources.promparse.series_of`), not all
10,000 per answer, most of which no window of that age asks for (sources/window_range.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from watchdog.foundation.model import Sample, SampleKind, Series
from watchdog.sources.promparse import labels_of, series_of

Answer = Sample | tuple[Any, ...]  # a Sample, or an instant vector's elements (compact)
_NONE = 'no series with {label}="{value}" in the shared answer'

# The longest an answer that failed (Prometheus down, a timeout) is reused, in seconds.
ERROR_MAX_AGE = 1.0


class SharedAnswers:
    """Coalesces and reuses answers to identical queries for up to ``max_age`` seconds."""

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age  # the default when a caller passes none
        # query -> (evaluation instant it answers, how long it serves, the fetch)
        self._answers: dict[str, tuple[float, float, asyncio.Task[Any]]] = {}
        # (query, label) -> the answer indexed and its series (or elements) by label value
        self._indexes: dict[tuple[str, str], tuple[Answer, dict[str, tuple[Any, ...]]]] = {}

    async def series(
        self,
        query: str,
        at: float,
        fetch: Callable[[], Awaitable[Answer]],
        label: str,
        value: str,
        max_age: float | None = None,
    ) -> Sample:
        """The series of the shared answer to ``query`` whose ``label`` is ``value``."""
        answer = await self.get(query, at, fetch, max_age)
        if isinstance(answer, Sample) and answer.kind is not SampleKind.VALUES:
            return answer
        index = self._indexes.get((query, label))
        if index is None or index[0] is not answer:
            index = (answer, by_value(answer, label))
            self._indexes[(query, label)] = index
        mine = index[1].get(value, ())
        if isinstance(answer, Sample):
            return picked(answer, mine, label, value)
        if not mine:
            return Sample.no_data(_NONE.format(label=label, value=value))
        return series_of(mine, f"{len(mine)} of {len(answer)} shared series")

    async def get(
        self,
        query: str,
        at: float,
        fetch: Callable[[], Awaitable[Any]],
        max_age: float | None = None,
    ) -> Any:
        """The answer to ``query`` at ``at``, fetched at most once per ``max_age``."""
        age = self.max_age if max_age is None else max_age
        entry = self._answers.get(query)
        if entry is None or not _fresh(entry[0], entry[2], at, age):
            self._forget_served(at)
            entry = (at, age, asyncio.ensure_future(fetch()))
            self._answers[query] = entry
        if entry[2].done():  # most callers: the answer is in (no shield to build)
            return entry[2].result()
        # shield: one caller giving up must not cancel the query the others wait for.
        return await asyncio.shield(entry[2])

    def _forget_served(self, at: float) -> None:
        # Dropped as soon as they can serve no one: young windows' ranges are clamped to
        # their age (sources/window_range.py), so 10,000 windows opened over minutes ask
        # dozens of variants of each query; kept for a fixed 60 s, their 10,000-series
        # answers held the 10,000-window benchmark above 1 GB.
        for query in [q for q, (taken, age, _) in self._answers.items() if at - taken >= age]:
            del self._answers[query]
        for key in [k for k in self._indexes if k[0] not in self._answers]:
            del self._indexes[key]


def _fresh(taken: float, task: asyncio.Task[Any], at: float, max_age: float) -> bool:
    """True when the answer to an evaluation at ``taken`` may serve one at ``at``."""
    if task.done():
        if task.cancelled() or task.exception() is not None:
            return False  # never hand on a cancellation or a crash
        result = task.result()
        if isinstance(result, Sample) and result.kind is SampleKind.ERROR:
            max_age = min(max_age, ERROR_MAX_AGE)
    return abs(at - taken) < max_age  # one interval on, the next scrape is in


def by_value(answer: Answer, label: str) -> dict[str, tuple[Any, ...]]:
    """The series of a sample (or the elements of a vector) grouped by their
    ``label``'s value (in tuples: held as long as the answer, and a list is one more
    object the garbage collector walks per series)."""
    index: dict[str, list[Any]] = {}
    if isinstance(answer, Sample):
        for series in answer.series:
            if (value := series.labels.get(label)) is not None:
                index.setdefault(value, []).append(series)
    else:
        for element in answer:
            value = labels_of(element).get(label)
            if isinstance(value, str):
                index.setdefault(value, []).append(element)
    return {value: tuple(found) for value, found in index.items()}


def series_for(sample: Sample, label: str, value: str) -> Sample:
    """Keep the series whose ``label`` is ``value``; none left is "no data"."""
    if sample.kind is not SampleKind.VALUES:
        return sample
    return picked(sample, [s for s in sample.series if s.labels.get(label) == value], label, value)


def picked(sample: Sample, mine: Sequence[Series], label: str, value: str) -> Sample:
    """The series of ``sample`` kept for one window, or "no data" when there are none."""
    if not mine:
        return Sample.no_data(_NONE.format(label=label, value=value))
    return Sample.of(*mine, detail=f"{len(mine)} of {len(sample.series)} shared series")
