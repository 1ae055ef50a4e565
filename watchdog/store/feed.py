"""The journal read across windows, in ``seq`` order: the role of a reader that follows
every window at once (escalation) at the cost of what was appended since it last read."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from watchdog.foundation.model import Event, EventKind


class JournalFeed(Protocol):
    """Every window's journal as one sequence: ``seq`` is global and only grows.

    PostgreSQL hands out ``seq`` before the insert commits, so a row with a lower
    ``seq`` may become visible after a higher one was read: a follower re-reads a little
    behind what it has seen (:mod:`watchdog.lifecycle.escalation`).
    """

    async def last_event_seq(self) -> int:
        """The newest event's ``seq``; 0 while the journal is empty."""
        ...

    async def list_events_after(
        self, after_seq: int, *, kinds: Collection[EventKind], limit: int
    ) -> list[Event]:
        """Events of any window with a ``seq`` above ``after_seq`` and a kind in
        ``kinds``, by ``seq``, at most ``limit`` of them."""
        ...
