"""Manual rollbacks on any replica: one that does not lead hands the request to the leader.

People press the button (API, Slack, CLI) on whichever replica their request reaches.
Only the leader may act, so a replica that cannot (it follows, or its token was just
refused) stores a ``rollback_requests`` row and journals ``rollback_requested``; the
leader's engine takes waiting requests at every tick and runs each through its own
pipeline (Gate, Dedup, Fence: still exactly once). The asking replica waits a few
seconds for the claim to land so the caller gets the usual answer; with no leader right
now the request stays stored and the caller hears what will happen: "queued: the leader
will roll back within N s" (``within``: a lease plus a tick), never "Not done".
"""

from __future__ import annotations

from typing import Protocol

import structlog

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Action, EventKind, Window
from watchdog.pipeline.base import Decision
from watchdog.store.base import ActionStore, RollbackRequest, WindowStore
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.ha.handoff")

POLL = 0.1  # seconds between looks at the action log while waiting for the leader


class HandoffStore(ActionStore, WindowStore, Protocol):
    """The action log (claims, requests) and the windows the requests are about."""


class Handoff:
    """Both sides of the hand-over: asking (any replica) and taking (the leader)."""

    def __init__(
        self, store: HandoffStore, journal: Journal, clock: Clock, within: float = 10.0
    ) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        self.within = within  # seconds until a leader takes a stored request, at most

    async def ask(self, d: Decision, *, action: str, wait: float) -> bool:
        """Store the request for the leader; True once its claim landed within ``wait``."""
        request = RollbackRequest(d.window.id, d.actor, d.reason, d.approved_by, d.at)
        if await self._store.request_rollback(request):
            log.warning("not the leader: the rollback is queued for the leader", window=d.window.id)
            await self._journal.record(
                d.window,
                EventKind.ROLLBACK_REQUESTED,
                f"{d.actor} asked for a rollback on a replica that does not lead: queued, "
                f"the leader will roll back within {self.within:g}s",
                at=d.at,
                data={"actor": d.actor, "approved_by": d.approved_by, "queued": True},
                notify=False,
            )
        deadline = self._clock.now() + wait
        while self._clock.now() < deadline:
            if await self._store.get_action(d.window.id, action) is not None:
                return True
            await self._clock.sleep(POLL)
        return await self._store.get_action(d.window.id, action) is not None

    async def take(self, now: float) -> list[Decision]:
        """The leader's side: the waiting requests, as decisions (windows still open)."""
        decisions = []
        for request in await self._store.take_rollback_requests():
            window = await self._store.get_window(request.window_id)
            if window is None or window.phase not in EVALUATING_PHASES:
                continue
            decisions.append(decision(request, window, now))
        return decisions


def decision(request: RollbackRequest, window: Window, now: float) -> Decision:
    """The manual decision a stored request stands for."""
    return Decision(
        window=window,
        action=Action.APPROVE if request.approved_by else Action.ROLLBACK,
        trigger="manual",
        actor=request.actor,
        reason=request.reason or f"manual rollback by {request.actor}",
        at=now,
        approved_by=request.approved_by,
    )
