"""One query per rule shared by every open window (``shared_by`` on a Prometheus rule).

A rule written as ``sum by (service) (...)`` with ``shared_by: service`` needs one
query for all windows instead of one per window: with 1,000 windows x 10 rules the
per-window queries alone took a whole core (bench/scale.py). Calls for the same
rendered query coalesce while one is in flight, and an answer taken at most
``max_age`` seconds from a caller's evaluation instant is reused; each window then
keeps the series whose label equals its service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from watchdog.model import Sample, SampleKind

# Answers older than this (seconds) are dropped when a new query is stored.
_KEEP = 60.0


class SharedAnswers:
    """Coalesces and briefly reuses answers to identical queries."""

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self._answers: dict[str, tuple[float, asyncio.Task[Sample]]] = {}

    async def get(self, query: str, at: float, fetch: Callable[[], Awaitable[Sample]]) -> Sample:
        """The answer to ``query`` at ``at``, fetched at most once per ``max_age``."""
        entry = self._answers.get(query)
        if entry is None or abs(at - entry[0]) > self.max_age:
            self._forget_older_than(at - _KEEP)
            entry = (at, asyncio.ensure_future(fetch()))
            self._answers[query] = entry
        # shield: one caller giving up must not cancel the query the others wait for.
        return await asyncio.shield(entry[1])

    def _forget_older_than(self, cutoff: float) -> None:
        for query in [q for q, (at, _) in self._answers.items() if at < cutoff]:
            del self._answers[query]


def series_for(sample: Sample, label: str, value: str) -> Sample:
    """Keep the series whose ``label`` is ``value``; none left is "no data"."""
    if sample.kind is not SampleKind.VALUES:
        return sample
    mine = tuple(s for s in sample.series if s.labels.get(label) == value)
    if not mine:
        return Sample.no_data(f'no series with {label}="{value}" in the shared answer')
    return Sample.of(*mine, detail=f"{len(mine)} of {len(sample.series)} shared series")
