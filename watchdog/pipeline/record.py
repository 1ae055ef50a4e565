"""The Record stage: how a rollback ended, written once and fenced by the token.

A rollback that succeeded moves the window to ``confirming`` when it has a
``confirm_for`` (the engine then watches the restored version: watchdog/lifecycle/confirm.py),
to ``rolled_back`` otherwise; one that failed ends ``rollback_failed``.
"""

from __future__ import annotations

from typing import Any

import structlog

from watchdog.foundation.clock import Clock
from watchdog.foundation.durations import format_duration
from watchdog.foundation.errors import FencedOut
from watchdog.foundation.model import ActionStatus, Event, EventKind, Window, WindowPhase
from watchdog.ha.coord import Coordinator
from watchdog.ha.fencing import Deposed
from watchdog.ha.patience import persist
from watchdog.pipeline.base import Decision
from watchdog.pipeline.stages import ROLLBACK, ActionLog
from watchdog.plumbing.metrics import Metrics
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.pipeline.record")


def after_success(window: Window) -> WindowPhase:
    """Where a window goes once its rollback succeeded."""
    return WindowPhase.CONFIRMING if window.confirm_for > 0 else WindowPhase.ROLLED_BACK


def succeeded(window: Window, trigger: str) -> tuple[str, dict[str, Any]]:
    """What ``rollback_succeeded`` says of ``window`` (already moved on), and its data:
    when the recovery is watched, and for how long."""
    if window.phase is not WindowPhase.CONFIRMING:
        return "rollback succeeded", {}
    target = window.deployment.previous_version or "the previous version"
    what = "the rules that fired recover" if trigger == "manual" else f"{trigger} recovers"
    message = (
        f"rollback succeeded; watching {target} for {format_duration(window.confirm_for)} "
        f"to confirm {what}"
    )
    return message, {"confirm_for": window.confirm_for}


class Record:
    """Write how the rollback ended: action log, window phase, journal, metrics.

    A rollback that succeeded leaves the window ``confirming`` when it has a
    ``confirm_for`` (watchdog/lifecycle/confirm.py), ``rolled_back`` otherwise.
    """

    def __init__(
        self,
        store: ActionLog,
        journal: Journal,
        clock: Clock,
        metrics: Metrics | None = None,
        deposed: Deposed | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._clock = clock
        self._metrics = metrics
        self._deposed = deposed
        self._coordinator = coordinator  # a lease re-taken by us carries the token on

    async def __call__(self, d: Decision) -> Decision | None:
        """Finish the action (fenced by the token) and move the window on: confirming, or
        a terminal phase; a deposed leader's outcome is refused and nothing else is
        written."""
        assert d.outcome is not None and d.token is not None
        now = self._clock.now()
        ok = d.outcome.ok
        detail = None if ok else d.outcome.error
        token = await self._carried(d.token)
        try:
            await persist(
                self._clock,
                "the rollback's outcome",
                lambda: self._store.finish_action(
                    d.window.id,
                    ROLLBACK,
                    status=ActionStatus.SUCCEEDED if ok else ActionStatus.FAILED,
                    at=now,
                    detail=detail,
                    token=token,
                ),
            )
        except FencedOut as exc:
            if self._deposed is not None:
                await self._deposed.refused(d.window, exc, doing="recording the outcome", at=now)
            return None
        # A rollback that worked is confirmed: the restored version is watched for the
        # window's confirm_for (watchdog/lifecycle/confirm.py) before the window ends.
        phase = after_success(d.window) if ok else WindowPhase.ROLLBACK_FAILED
        window = d.window.with_phase(phase, now, detail)
        data: dict[str, object] = {"actor": d.actor}
        if ok:
            kind = EventKind.ROLLBACK_SUCCEEDED
            message, more = succeeded(window, d.trigger)
            data.update(more)
        else:
            kind, message = EventKind.ROLLBACK_FAILED, f"rollback failed: {detail}"
        # The phase and the event together: two processes recording one outcome (the
        # leader, and a new leader's recovery finishing "only the recording") tell it
        # once, and one that fails half-way leaves the whole of it to the other.
        event = await self._store.set_phase_journaled(
            d.window.id, phase, Event(window.id, now, kind, message, data=data),
            expected={WindowPhase.ROLLING_BACK}, reason=detail,
        )  # fmt: skip
        if event is None:
            log.info("rollback outcome already recorded", window=d.window.id)
            return None
        self._journal.logged(event, window)
        if self._metrics is not None:
            result = WindowPhase.ROLLED_BACK if ok else WindowPhase.ROLLBACK_FAILED
            self._metrics.rollback(window.deployment.service, result.value)
        return d.but(window=window, events=(*d.events, event))

    async def _carried(self, token: int) -> int:
        if self._coordinator is None:
            return token
        return await self._coordinator.carry(token) or token  # else the store refuses it
