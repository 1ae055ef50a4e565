"""The stages of the decision path: gate → dedup → fence → (act → record) → notify.

Act and Record, the two that run and write the rollback, have their own modules
(:mod:`watchdog.pipeline.act`, :mod:`watchdog.pipeline.record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import structlog

from watchdog.actions.spec import Plan, plan_for
from watchdog.foundation.errors import FencedOut
from watchdog.foundation.model import Action, EventKind, WindowPhase
from watchdog.ha.coord import Coordinator
from watchdog.ha.fencing import Deposed
from watchdog.pipeline.base import Decision, settle
from watchdog.pipeline.crashpoints import CrashPoints
from watchdog.store.base import ActionStore, WindowStore
from watchdog.store.feed import PhaseJournal
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.pipeline")

ROLLBACK = "rollback"
ACTABLE = frozenset({WindowPhase.WATCHING, WindowPhase.HELD, WindowPhase.AWAITING_APPROVAL})


class ActionLog(ActionStore, WindowStore, PhaseJournal, Protocol):
    """Fence and Record: the action log and the window phase it moves."""


class Gate:
    """Is acting allowed at all? Reloads the window and applies holds and approvals."""

    def __init__(
        self,
        store: WindowStore,
        journal: Journal,
        plans: Mapping[str, Plan],
        default_plan: str | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._plans = plans
        self._default = default_plan
        self._suppressed: set[tuple[str, str]] = set()

    async def __call__(self, d: Decision) -> Decision | None:
        """Stop notify-only actions, held windows and rollbacks that need approval."""
        window = await self._store.get_window(d.window.id)
        if window is None or window.phase not in ACTABLE or d.action is Action.NOTIFY:
            return None
        d = d.but(window=window)
        if not d.automatic:
            return d
        if window.phase is WindowPhase.HELD:
            await self._suppress(d)
            return None
        if window.phase is WindowPhase.AWAITING_APPROVAL:
            return None
        _, plan = plan_for(window.deployment, self._plans, self._default)  # what Act runs
        if d.action is Action.APPROVE or (plan is not None and plan.data_loss_risk):
            await self._ask_approval(d)
            return None
        return d

    async def _suppress(self, d: Decision) -> None:
        # Say it once per rule: a held window keeps firing at every interval.
        key = (d.window.id, d.trigger)
        if key not in self._suppressed:
            self._suppressed.add(key)
            await self._journal.record(
                d.window,
                EventKind.ACTION_SUPPRESSED,
                f"{d.trigger} fired but the window is held: not rolling back",
                at=d.at,
                rule=d.trigger,
            )

    async def _ask_approval(self, d: Decision) -> None:
        moved = await self._store.set_phase(
            d.window.id,
            WindowPhase.AWAITING_APPROVAL,
            at=d.at,
            reason=d.reason,
            expected={WindowPhase.WATCHING},
        )
        if moved:
            await self._journal.record(
                d.window,
                EventKind.APPROVAL_NEEDED,
                f"{d.trigger} fired: rollback needs approval ({d.reason})",
                at=d.at,
                rule=d.trigger,
            )


class Dedup:
    """Has this window already been rolled back (or is it being)? Cheap early exit."""

    def __init__(self, store: ActionStore) -> None:
        self._store = store

    async def __call__(self, d: Decision) -> Decision | None:
        """Stop when the action log already has a rollback for the window."""
        if await self._store.get_action(d.window.id, ROLLBACK) is not None:
            return None
        return d


class Fence:
    """Take the leader's fencing token and claim the rollback in the action log.

    The claim is the exactly-once point: the store's unique (window, action) key lets
    one caller through, ever, and refuses a stale token.
    """

    def __init__(
        self,
        store: ActionLog,
        coordinator: Coordinator,
        journal: Journal,
        crash: CrashPoints | None = None,
        deposed: Deposed | None = None,
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._journal = journal
        self._crash = crash or CrashPoints()
        self._deposed = deposed or Deposed(coordinator, journal)

    async def __call__(self, d: Decision) -> Decision | None:
        """Claim the rollback; stop if another claim won or this replica does not lead."""
        token = await self._coordinator.token()
        if token is None:
            log.warning("not the leader: not acting", window=d.window.id, trigger=d.trigger)
            return None
        self._crash.reach("decided")
        try:
            claimed = await self._store.claim_action(
                d.window.id, ROLLBACK, token=token, actor=d.actor, at=d.at
            )
        except FencedOut as exc:
            await self._deposed.refused(d.window, exc, doing="claiming the rollback", at=d.at)
            return None
        if not claimed:
            return None
        self._crash.reach("claimed")
        return await self.begin(d.but(token=token))

    async def begin(self, d: Decision, *, announce: bool = True) -> Decision:
        """The claimed rollback begins: the window ``rolling_back``, ``rollback_started``
        journaled (unless ``announce`` is False: recovery found it journaled already)."""
        window = d.window
        if window.phase is not WindowPhase.ROLLING_BACK:
            await self._store.set_phase(
                window.id, WindowPhase.ROLLING_BACK, at=d.at, reason=d.reason, expected=ACTABLE
            )
            window = window.with_phase(WindowPhase.ROLLING_BACK, d.at, d.reason)
        settle(d, True)
        if announce:
            await self._journal.record(
                window,
                EventKind.ROLLBACK_STARTED,
                f"rolling back {window.deployment.service} to "
                f"{window.deployment.previous_version or 'the previous version'}: {d.reason}",
                at=d.at,
                rule=d.trigger if d.automatic else None,
                data={
                    "actor": d.actor,
                    "trigger": d.trigger,
                    "token": d.token,
                    "approved_by": d.approved_by,
                },
            )
        return d.but(window=window)


class Notify:
    """Tell people how it ended (other events are told as they are journaled)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    async def __call__(self, d: Decision) -> Decision | None:
        """Hand the outcome events to the notifier, without waiting for delivery."""
        for event in d.events:
            self._journal.notify(event, d.window)
        return d
