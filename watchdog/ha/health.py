"""The store and the clock, as every replica sees them: probed each tick, said loudly.

**One clock.** Replicas compare times across processes (an alert's start against the
window's opening, a window's end, an outbox claim's expiry), so those times must come
from one clock: the store's (PostgreSQL's ``clock_timestamp()``; SQLite is one node,
its clock is ours). Each probe measures this replica's offset from it (the middle of
the query's round trip) and :class:`StoreClock`, the clock the whole process reads,
adds it. A replica off by more than ``max_clock_skew`` also refuses leadership until it
is back in step (``/readyz`` 503, ``watchdog_clock_offset_seconds``, one log line per
change): something is wrong with its time keeping, and it must not be the one acting.

**A store outage is loud.** A failed probe marks the store unreachable: ``/readyz``
503, ``watchdog_store_up`` 0, one ERROR line; when it answers again, one line saying
for how long, and the leader's re-drive journals that on every rollback it resumes
(``pipeline/recovery.py``). In between, jobs that fail because of it stay quiet
(:meth:`Health.quiet`): one line per state change, not a stack trace per tick.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Gauge

from watchdog.foundation.clock import Clock

log = structlog.get_logger("watchdog.ha.health")


class TimedStore(Protocol):
    """The store's clock (:meth:`ActionStore.store_time`)."""

    async def store_time(self) -> float:
        """Epoch seconds on the store's clock."""
        ...


class StoreClock:
    """The wall clock corrected to the store's: what every part of the process reads.

    ``injected`` is TEST ONLY (the ``test_clock_offset`` setting): a skew added to the
    local clock, so tests can run a replica whose clock is wrong.
    """

    def __init__(self, local: Clock, injected: float = 0.0) -> None:
        self._local = local
        self._injected = injected
        self.offset = 0.0  # store minus local, as last measured

    def local(self) -> float:
        """This machine's own idea of the time (with the test-only skew)."""
        return self._local.now() + self._injected

    def now(self) -> float:
        """The store's time, as measured."""
        return self.local() + self.offset

    async def sleep(self, seconds: float) -> None:
        """Waiting is local: intervals need no common clock."""
        await self._local.sleep(seconds)


class Health:
    """Probes the store (reachable? its clock?) and says what it finds."""

    def __init__(
        self,
        store: TimedStore,
        clock: StoreClock,
        registry: CollectorRegistry | None = None,
        *,
        max_skew: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_skew = max_skew
        self._monotonic = monotonic
        self._down_since: float | None = None
        self._down_reason = ""
        self.last_outage: float | None = None  # seconds the last outage lasted
        self._skewed = False
        self._up = Gauge("watchdog_store_up", "1 while the store answers.", registry=registry)
        self._offset = Gauge(
            "watchdog_clock_offset_seconds",
            "The store's clock minus this replica's, as last measured.",
            registry=registry,
        )
        self._up.set(1)

    async def probe(self) -> bool:
        """Measure the store's clock; False when the store did not answer."""
        before = self._clock.local()
        try:
            remote = await self._store.store_time()
        except Exception as exc:
            self._store_down(exc)
            return False
        after = self._clock.local()
        self._clock.offset = remote - (before + after) / 2
        self._offset.set(self._clock.offset)
        self._store_up()
        self._check_skew()
        return True

    @property
    def store_down(self) -> bool:
        """True between a failed probe and the next one that succeeds."""
        return self._down_since is not None

    def problem(self) -> str | None:
        """What ``/readyz`` says, or None."""
        if self._down_since is not None:
            return f"the store is unreachable: {self._down_reason}"
        return self.may_lead()

    def outage_note(self) -> str | None:
        """How long the last store outage lasted, for the journal of what it paused."""
        if self.last_outage is None:
            return None
        return f"the store was unreachable for {self.last_outage:.1f}s"

    def may_lead(self) -> str | None:
        """Why this replica must not lead now (its clock), or None."""
        if not self._skewed:
            return None
        return (
            f"this replica's clock is {abs(self._clock.offset):.1f}s off the store's "
            f"(more than max_clock_skew {self._max_skew:g}s): not leading until it is in step"
        )

    async def quiet(self, job: Callable[[], Awaitable[object]]) -> None:
        """Run a job; a failure during a store outage is already said: stay quiet."""
        try:
            await job()
        except Exception:
            if self.store_down or not await self.probe():
                return
            raise

    def _store_down(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = self._monotonic()
            self._down_reason = f"{type(exc).__name__}: {exc}"
            self._up.set(0)
            log.error(
                "STORE UNREACHABLE: nothing is evaluated or recorded", error=self._down_reason
            )

    def _store_up(self) -> None:
        if self._down_since is not None:
            self.last_outage = self._monotonic() - self._down_since
            self._down_since = None
            self._up.set(1)
            log.warning("the store answers again", outage_seconds=round(self.last_outage, 1))

    def _check_skew(self) -> None:
        skewed = abs(self._clock.offset) > self._max_skew
        if skewed != self._skewed:
            self._skewed = skewed
            if skewed:
                log.error("CLOCK SKEW: refusing leadership", offset=round(self._clock.offset, 2))
            else:
                log.warning("clock back in step with the store", offset=self._clock.offset)
