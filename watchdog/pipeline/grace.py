"""The grace stage: an automatic rollback announced, then held off for the rule's grace.

People see "rolling back in 60s — Hold?" and can veto it. After the wait the window is
read again; a hold (or anything else that moved it off ``watching``) stops the decision
here. Exactly-once is untouched: only Fence's claim, after this stage, acts.
"""

from __future__ import annotations

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EventKind, WindowPhase
from watchdog.pipeline.base import Decision
from watchdog.store.base import WindowStore
from watchdog.store.journal import Journal


class Grace:
    """Announce, wait with the injected clock, re-read the window, stop if held."""

    def __init__(self, store: WindowStore, journal: Journal, clock: Clock) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        # Windows in their grace period: other rules firing meanwhile join this wait.
        self._waiting: set[str] = set()

    async def __call__(self, d: Decision) -> Decision | None:
        """Pass manual and grace-less decisions; hold off the rest."""
        if not d.automatic or d.grace <= 0:
            return d
        if d.window.id in self._waiting:
            return None
        self._waiting.add(d.window.id)
        try:
            return await self._wait(d)
        finally:
            self._waiting.discard(d.window.id)

    async def _wait(self, d: Decision) -> Decision | None:
        await self._journal.record(
            d.window,
            EventKind.ROLLBACK_SCHEDULED,
            f"{d.trigger} fired: rolling back in {d.grace:g}s unless held — Hold? ({d.reason})",
            at=d.at,
            rule=d.trigger,
            data={"grace": d.grace, "deadline": d.at + d.grace, "severity": "critical"},
        )
        await self._clock.sleep(d.grace)
        window = await self._store.get_window(d.window.id)
        if window is None or window.phase is not WindowPhase.WATCHING:
            if window is not None and window.phase is WindowPhase.HELD:
                await self._journal.record(
                    window,
                    EventKind.ACTION_SUPPRESSED,
                    f"{d.trigger}: held during the grace period, not rolling back",
                    at=self._clock.now(),
                    rule=d.trigger,
                )
            return None
        return d.but(window=window, at=self._clock.now())
