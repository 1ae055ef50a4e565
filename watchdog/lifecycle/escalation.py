"""Escalation: a critical rule that fired and nobody acknowledged gets louder.

``check()`` runs on the scheduler next to ``Engine.tick()``. For each open window whose
first critical firing (or approval request) is older than ``after`` seconds with no
``acknowledged`` event since, it journals ``escalated`` once; the routes send that to
PagerDuty (a trigger) and to Slack (a second mention of the on-call people).
"""

from __future__ import annotations

from typing import Protocol

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Event, EventKind, WindowPhase
from watchdog.store.base import EventStore, WindowStore
from watchdog.store.journal import Journal

WATCHED = EVALUATING_PHASES | {WindowPhase.ROLLING_BACK}
_CALMING = frozenset({EventKind.ACKNOWLEDGED, EventKind.ESCALATED})


def _alarm(event: Event) -> bool:
    if event.kind in {EventKind.APPROVAL_NEEDED, EventKind.ROLLBACK_SCHEDULED}:
        return True
    return event.kind is EventKind.RULE_FIRING and event.data.get("severity") == "critical"


class EscalationStore(EventStore, WindowStore, Protocol):
    """What escalation reads: open windows and their new journal events."""


class Escalator:
    """Journals ``escalated`` once per window whose alarm went unacknowledged."""

    def __init__(
        self, store: EscalationStore, journal: Journal, clock: Clock, after: float
    ) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        self._after = after
        self._settled: set[str] = set()  # windows decided (escalated or acknowledged)
        # Per undecided window: the last journal seq read and its first alarm, so each
        # check reads only the events appended since (it runs every tick).
        self._read: dict[str, tuple[int, Event | None]] = {}

    async def check(self) -> int:
        """Escalate what is overdue; returns how many windows were escalated."""
        now = self._clock.now()
        escalated = 0
        open_ids = set()
        for window in await self._store.list_windows(phases=WATCHED, limit=10_000):
            open_ids.add(window.id)
            if window.id in self._settled:
                continue
            alarm, calmed = await self._alarm(window.id)
            if alarm is None or alarm.seq is None:
                continue
            if calmed:
                self._settled.add(window.id)
                continue
            if now - alarm.at < self._after:
                continue
            self._settled.add(window.id)
            escalated += 1
            await self._journal.record(
                window,
                EventKind.ESCALATED,
                f"{alarm.rule or 'an alarm'} went unacknowledged for {now - alarm.at:.0f}s: "
                "escalating",
                at=now,
                rule=alarm.rule,
                data={"severity": "critical", "alarm_seq": alarm.seq},
            )
        self._read = {k: v for k, v in self._read.items() if k in open_ids - self._settled}
        return escalated

    async def _alarm(self, window_id: str) -> tuple[Event | None, bool]:
        """The window's first alarm, and whether an ack or escalation followed it."""
        last, alarm = self._read.get(window_id, (0, None))
        calmed = False
        for event in await self._store.list_events(window_id, after_seq=last):
            last = max(last, event.seq or last)
            if alarm is None:
                alarm = event if _alarm(event) else None
            elif event.kind in _CALMING:
                calmed = True
        self._read[window_id] = (last, alarm)
        return alarm, calmed
