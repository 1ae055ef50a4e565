"""Reads across windows of what changed since the reader last read, at the cost of that
and not of every window: the journal in ``seq`` order (escalation follows every window at
once), and the windows by ``updated_at`` (the engine keeps every open one in memory,
:mod:`watchdog.lifecycle.openwindows`; implemented in :mod:`watchdog.store.changes`).
And one write beside them: a phase change with the event that tells it."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from watchdog.foundation.model import Event, EventKind, Window, WindowPhase


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


class WindowChanges(Protocol):
    """Windows of any phase by ``updated_at``.

    ``updated_at`` comes from the clock of the replica that wrote it, and PostgreSQL
    makes a row visible when its transaction commits, a moment after it was stamped: a
    follower asks a little before the instant it last read (clock skew plus commit delay).
    """

    async def list_windows_changed(self, since: float, *, limit: int) -> list[Window]:
        """Windows of any phase with ``updated_at`` at or after ``since``, oldest change
        first, at most ``limit`` of them."""
        ...


class PhaseJournal(Protocol):
    """A window's phase and the event that tells it, written together (Record)."""

    async def set_phase_journaled(
        self,
        window_id: str,
        phase: WindowPhase,
        event: Event,
        *,
        expected: Collection[WindowPhase],
        reason: str | None = None,
    ) -> Event | None:
        """Move the window to ``phase`` at ``event.at`` if it is in one of ``expected``,
        and then append ``event`` in the same transaction (returned with its ``seq``);
        None, and nothing written, when it is in another phase. Two processes recording
        one outcome tell it once; one that fails half-way leaves it to the other."""
        ...
