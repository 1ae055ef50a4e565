"""A window's milestones, each told once: halfway through, and passed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from watchdog.journal import Journal
from watchdog.model import EVALUATING_PHASES, EventKind, RuleState, Verdict, Window, WindowPhase
from watchdog.store.base import EventStore, WindowStore
from watchdog.wording import jsonable

States = Callable[[str], Awaitable[Mapping[str, RuleState]]]


class MilestoneStore(EventStore, WindowStore, Protocol):
    """What milestones use: the journal (said once?) and the phase (passed)."""


class Milestones:
    """Journals the midpoint and the pass of windows (the engine's tick asks)."""

    def __init__(self, store: MilestoneStore, journal: Journal) -> None:
        self._store = store
        self._journal = journal
        self._midpoints: set[str] = set()  # windows whose midpoint is already told

    def forget(self, window_id: str) -> None:
        """Drop what is remembered of a closed window."""
        self._midpoints.discard(window_id)

    async def midpoint(self, window: Window, now: float, states: States) -> None:
        """Tell once that the window is halfway through, and whether all is green."""
        if window.id in self._midpoints or window.phase is WindowPhase.CONFIRMING:
            return
        if now < window.started_at + (window.ends_at - window.started_at) / 2:
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

    async def passed(self, window: Window, now: float, states: Mapping[str, RuleState]) -> bool:
        """Move an elapsed window to passed and journal each rule's worst value.

        False when the window had already left the evaluating phases (nothing told).
        """
        # Not a confirming window: its rollback is judged by watchdog/confirm.py instead.
        moved = await self._store.set_phase(
            window.id,
            WindowPhase.PASSED,
            at=now,
            expected=EVALUATING_PHASES - {WindowPhase.CONFIRMING},
        )
        if not moved:
            return False
        summary = {
            name: {"worst": jsonable(s.worst_value), "last_verdict": s.verdict.value}
            for name, s in sorted(states.items())
        }
        # Shadow mode's verdict belongs in the summary: would this deploy have gone back?
        events = await self._store.list_events(window.id)
        would = next((e for e in events if e.kind is EventKind.WOULD_ROLL_BACK), None)
        actor = str(would.data.get("actor")) if would else None
        shadow = f"; in shadow mode, {actor} would have rolled it back" if would else ""
        await self._journal.record(
            window.with_phase(WindowPhase.PASSED, now),
            EventKind.WINDOW_PASSED,
            f"window passed: {window.deployment.service} {window.deployment.version} "
            f"stays deployed{shadow}",
            at=now,
            data={"rules": summary, "would_roll_back": actor},
        )
        return True
