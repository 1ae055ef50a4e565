"""A window's milestones, each told once: halfway through, and its end (passed,
inconclusive, expired while held, would have rolled back: watchdog/lifecycle/endings.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from watchdog.evaluation.coverage import DEFAULT_FRACTION
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    EventKind,
    RuleState,
    Verdict,
    Window,
    WindowPhase,
)
from watchdog.lifecycle.endings import ending
from watchdog.rulefile.load import AnyRule
from watchdog.store.base import EventStore, WindowStore
from watchdog.store.journal import Journal

States = Callable[[str], Awaitable[Mapping[str, RuleState]]]


class MilestoneStore(EventStore, WindowStore, Protocol):
    """What milestones use: the journal (said once?) and the phase (the end)."""


class Milestones:
    """Journals the midpoint and the end of windows (the engine's tick asks)."""

    def __init__(
        self, store: MilestoneStore, journal: Journal, fraction: float = DEFAULT_FRACTION
    ) -> None:
        self._store = store
        self._journal = journal
        self._fraction = fraction  # judged evaluations a deciding rule needs to pass
        self._midpoints: set[str] = set()  # windows whose midpoint is already told

    def forget(self, window_id: str) -> None:
        """Drop what is remembered of a closed window."""
        self._midpoints.discard(window_id)

    def midpoint_due(self, window: Window, now: float) -> bool:
        """Whether :meth:`midpoint` has something to do (a tick asks for every window)."""
        if window.id in self._midpoints or window.phase is WindowPhase.CONFIRMING:
            return False
        return now >= window.started_at + (window.ends_at - window.started_at) / 2

    async def midpoint(self, window: Window, now: float, states: States) -> None:
        """Tell once that the window is halfway through, and whether all is green."""
        if not self.midpoint_due(window, now):
            return
        self._midpoints.add(window.id)
        # After a restart the memory is empty: the journal says whether it was told.
        events = await self._store.list_events(window.id)
        if any(e.kind is EventKind.WINDOW_MIDPOINT for e in events):
            return
        current = await states(window.id)
        bad = sorted(n for n, s in current.items() if s.verdict is not Verdict.OK)
        status = "all checks green" if not bad else f"not green: {', '.join(bad)}"
        await self._journal.record(
            window, EventKind.WINDOW_MIDPOINT, f"halfway through the window, {status}", at=now
        )

    async def close(
        self,
        window: Window,
        now: float,
        states: Mapping[str, RuleState],
        rules: Sequence[AnyRule],
    ) -> WindowPhase | None:
        """Move an elapsed window to its truthful end (watchdog/lifecycle/endings.py) and journal it
        with each rule's worst value and coverage.

        None when the window had already left the evaluating phases (nothing told).
        """
        events = await self._store.list_events(window.id)
        end = ending(window, rules, states, events, self._fraction)
        # Not a confirming window: its rollback is judged by watchdog/lifecycle/confirm.py instead.
        moved = await self._store.set_phase(
            window.id,
            end.phase,
            at=now,
            reason=end.reason,
            expected=EVALUATING_PHASES - {WindowPhase.CONFIRMING},
        )
        if not moved:
            return None
        await self._journal.record(
            window.with_phase(end.phase, now, end.reason),
            end.kind,
            end.message,
            at=now,
            data=end.data,
        )
        return end.phase
