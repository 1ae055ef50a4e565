"""The scrape interval, as Prometheus itself says it: ``GET /api/v1/targets``.

Ranges are clamped to a window's age rounded up to the scrape grid, and a confirmation
waits one scrape after the rollback before it reads the restored version
(watchdog/sources/window_range.py). A setting for that interval is one users forget:
Prometheus scraping every 5 s with the setting left at 15 s made confirmation read 15 s
back, into the rolled-back version's errors, and call a healing rollback ineffective.

So the interval is read from Prometheus' active targets (each carries its
``scrapeInterval``, by ``job`` label), refreshed every :data:`REFRESH` seconds. A rule
naming its ``job`` gets that job's interval; any other gets the longest of all jobs
(the safe side: waiting one scrape of the slowest job leaves every job's first sample
of the restored version in range). Until Prometheus answers, and for a job it does not
list, the ``prometheus_scrape_interval`` setting stands in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from watchdog.foundation.errors import WatchdogError
from watchdog.sources.window_range import duration_seconds

log = structlog.get_logger("watchdog.sources.scrape_interval")

REFRESH = 300.0  # seconds between reads of the targets
RETRY = 30.0  # after a failed read
MAX_TARGETS = 100_000  # an answer listing more is read only this far


def intervals(body: Any) -> dict[str, float]:
    """Longest scrape interval per job from a ``/api/v1/targets`` answer (pure)."""
    data = body.get("data") if isinstance(body, Mapping) else None
    targets = data.get("activeTargets") if isinstance(data, Mapping) else None
    out: dict[str, float] = {}
    for target in (targets if isinstance(targets, list) else [])[:MAX_TARGETS]:
        if not isinstance(target, Mapping):
            continue
        labels = target.get("labels")
        job = labels.get("job") if isinstance(labels, Mapping) else None
        text = target.get("scrapeInterval")
        if not isinstance(job, str) or not isinstance(text, str):
            continue
        seconds = duration_seconds(text)
        if seconds > 0:
            out[job] = max(seconds, out.get(job, 0.0))
    return out


class ScrapeIntervals:
    """Caches the per-job intervals ``fetch`` reads; ``grid(job)`` never raises."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Any]],
        fallback: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._fallback = fallback
        self._monotonic = monotonic
        self._jobs: dict[str, float] = {}
        self._longest = fallback  # max of _jobs (asked by every rule without a job)
        self._next = 0.0  # when to read again
        self._lock = asyncio.Lock()

    @property
    def known(self) -> dict[str, float]:
        """The intervals read so far, by job (empty before the first answer)."""
        return dict(self._jobs)

    async def grid(self, job: str | None = None) -> float:
        """The scrape interval of ``job`` (None: the longest of all jobs)."""
        if self._monotonic() >= self._next:
            await self._refresh()
        if job is not None and job in self._jobs:
            return self._jobs[job]
        return self._longest

    async def _refresh(self) -> None:
        if self._monotonic() < self._next:
            return
        async with self._lock:
            if self._monotonic() < self._next:
                return  # another rule read them meanwhile
            try:
                found = intervals(await self._fetch())
            except WatchdogError as exc:
                log.warning("scrape intervals unreadable", error=str(exc))
                self._next = self._monotonic() + RETRY
                return
            if found != self._jobs:
                log.debug("scrape intervals from Prometheus", jobs=found)
            self._jobs = found or self._jobs
            self._longest = max(self._jobs.values(), default=self._fallback)
            self._next = self._monotonic() + REFRESH
