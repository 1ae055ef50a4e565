"""Escalation: a critical rule that fired and nobody acknowledged gets louder.

``check()`` runs on the scheduler next to ``Engine.tick()``. For each open window whose
first critical firing (or approval request) is older than ``after`` seconds with no
``acknowledged`` event since, it journals ``escalated`` once; the routes send that to
PagerDuty (a trigger) and to Slack (a second mention of the on-call people).

It runs every tick on the leader, so a check costs what was journaled since the last
one, not the open windows: it follows the alarm and calming events of every window in
``seq`` order (:class:`~watchdog.store.feed.JournalFeed`), keeps each window's first
alarm until something calms it, and looks up only the windows whose alarm is overdue.
The first check reads the journal of every open window once, so an alarm raised before
this replica started (or first led) is not missed.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Event, EventKind, WindowPhase
from watchdog.store.base import EventStore, WindowStore
from watchdog.store.feed import JournalFeed
from watchdog.store.journal import Journal

WATCHED = EVALUATING_PHASES | {WindowPhase.ROLLING_BACK}  # every phase but the terminal ones
_CALMING = frozenset({EventKind.ACKNOWLEDGED, EventKind.ESCALATED})
_ALARMING = frozenset(
    {EventKind.APPROVAL_NEEDED, EventKind.ROLLBACK_SCHEDULED, EventKind.RULE_FIRING}
)
_FOLLOWED = _ALARMING | _CALMING
_OPEN = 10_000  # open windows read at the first check (and when forgetting settled ones)
_BATCH = 500  # events per read
_READS = 20  # reads per check: a longer backlog is worked off over the next checks
# PostgreSQL may commit a lower seq after a higher one was read: each check re-reads
# from where the journal stood this long ago (re-reading an event changes nothing).
_LATE = 10.0
_SETTLED = 1_000  # settled windows kept before the closed ones among them are forgotten


def _alarm(event: Event) -> bool:
    if event.kind in {EventKind.APPROVAL_NEEDED, EventKind.ROLLBACK_SCHEDULED}:
        return True
    return event.kind is EventKind.RULE_FIRING and event.data.get("severity") == "critical"


def _seq(event: Event) -> int:
    return event.seq or 0  # stored events always have one


class EscalationStore(JournalFeed, EventStore, WindowStore, Protocol):
    """What escalation reads: new journal events, open windows and their journal."""


class Escalator:
    """Journals ``escalated`` once per window whose alarm went unacknowledged."""

    def __init__(
        self, store: EscalationStore, journal: Journal, clock: Clock, after: float
    ) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        self._after = after
        self._pending: dict[str, Event] = {}  # window → its first alarm, not calmed yet
        self._settled: set[str] = set()  # decided: escalated, acknowledged or closed
        self._forget_at = _SETTLED
        self._cursor: int | None = None  # the newest seq read; None before the first check
        self._marks: deque[tuple[float, int]] = deque()  # (when, cursor) of late moves

    async def check(self) -> int:
        """Escalate what is overdue; returns how many windows were escalated."""
        now = self._clock.now()
        if self._cursor is None:
            await self._start(now)
        if not await self._follow(now):
            return 0  # behind the journal: decide once read up, not on a stale picture
        await self._forget_settled()
        return await self._escalate(now)

    async def _start(self, now: float) -> None:
        """Read the journal of every open window once: alarms from before this check."""
        head = await self._store.last_event_seq()
        for window in await self._store.list_windows(phases=WATCHED, limit=_OPEN):
            for event in await self._store.list_events(window.id):
                self._see(event)
        self._cursor = head
        self._marks.append((now, head))

    async def _follow(self, now: float) -> bool:
        """Read the events appended since the last check; False when more are waiting."""
        cursor = self._cursor or 0
        after = self._since(now, cursor)
        for _ in range(_READS):
            batch = await self._store.list_events_after(after, kinds=_FOLLOWED, limit=_BATCH)
            for event in batch:
                self._see(event)
            if batch:
                after = _seq(batch[-1])
            if len(batch) < _BATCH:
                self._cursor = max(cursor, after)
                if not self._marks or self._marks[-1][1] != self._cursor:
                    self._marks.append((now, self._cursor))  # when the cursor got there
                return True
        # A backlog is read far behind the journal's head, where nothing commits late:
        # the next check reads on from here instead of from the marks.
        self._cursor = max(cursor, after)
        self._marks.clear()
        return False

    def _since(self, now: float, cursor: int) -> int:
        """Where to read from: the cursor as it stood ``_LATE`` seconds ago."""
        while len(self._marks) > 1 and self._marks[1][0] <= now - _LATE:
            self._marks.popleft()
        return min(self._marks[0][1], cursor) if self._marks else cursor

    def _see(self, event: Event) -> None:
        """Take one event into account; seeing it again (or late) changes nothing."""
        window_id = event.window_id
        if window_id in self._settled:
            return
        first = self._pending.get(window_id)
        if _alarm(event):
            if first is None or _seq(event) < _seq(first):
                self._pending[window_id] = event
        elif event.kind in _CALMING and first is not None and _seq(event) > _seq(first):
            del self._pending[window_id]
            self._settled.add(window_id)

    async def _escalate(self, now: float) -> int:
        """Journal ``escalated`` for each overdue alarm whose window is still open."""
        escalated = 0
        for window_id, alarm in list(self._pending.items()):
            if now - alarm.at < self._after:
                continue
            window = await self._store.get_window(window_id)
            del self._pending[window_id]
            self._settled.add(window_id)  # a re-read of its alarm (_LATE) changes nothing
            if window is None or window.phase not in WATCHED:
                continue  # closed for good: no phase leads back to a watched one
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
        return escalated

    async def _forget_settled(self) -> None:
        """Drop the settled windows that closed, once there are many (bounded memory)."""
        if len(self._settled) <= self._forget_at:
            return
        open_ids = {w.id for w in await self._store.list_windows(phases=WATCHED, limit=_OPEN)}
        if len(open_ids) < _OPEN:  # a cut list would forget open windows too
            self._settled &= open_ids
        self._forget_at = max(_SETTLED, 2 * len(self._settled))
