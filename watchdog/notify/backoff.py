"""What a failed delivery does: wait by the backoff (markers get a small deadline and few
attempts), or give up and be reported in the window's journal as ``notify_failed``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EventKind, Window
from watchdog.foundation.retry import backoff_delay
from watchdog.notify.markers import MARKERS
from watchdog.store.base import OutboxItem
from watchdog.store.journal import Journal

Report = Callable[[Window, OutboxItem, str], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Delivery retry policy."""

    timeout: float = 5.0
    first: float = 1.0
    cap: float = 300.0
    max_attempts: int = 20
    marker_timeout: float = 2.0  # a dashboard annotation is not worth a long wait
    marker_attempts: int = 3

    def deadline(self, channel: str) -> float:
        """Seconds one attempt on ``channel`` may take."""
        return min(self.timeout, self.marker_timeout) if channel in MARKERS else self.timeout

    def attempts(self, channel: str) -> int:
        """Attempts before ``channel`` gives a notification up."""
        if channel in MARKERS:
            return min(self.max_attempts, self.marker_attempts)
        return self.max_attempts

    def delay(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt, after ``attempts`` failed ones."""
        return backoff_delay(attempts, first=self.first, cap=self.cap, retry_after=retry_after)


def journal_report(journal: Journal, clock: Clock) -> Report:
    """Report permanent delivery failures in the window's journal (never re-notified)."""

    async def report(window: Window, item: OutboxItem, error: str) -> None:
        await journal.record(
            window,
            EventKind.NOTIFY_FAILED,
            f"{item.channel} notification of event {item.event_seq} failed: {error}",
            at=clock.now(),
            data={"channel": item.channel, "event_seq": item.event_seq, "error": error},
            notify=False,
        )

    return report
