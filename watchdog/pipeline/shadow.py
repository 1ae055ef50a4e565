"""The shadow stage: trust earned before the watchdog acts.

A decision from a shadow rule (``shadow: true``) or in a shadow window (``--shadow``, or
the ``shadow`` / ``shadow_services`` settings the window opened with) runs everything up
to the act:
the rule was judged as usual, and here, instead of rolling back, the window journals
``would_roll_back`` with the plan it would have run, ``watchdog_would_rollback_total``
counts it, and the decision stops. No executor is ever called.

Once per window, like the rollback it stands for: the action log's unique
``(window, would_roll_back)`` claim lets one decision through, across restarts and
replicas. Manual rollbacks (a person asked) are never shadowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watchdog.actions.spec import Plan
from watchdog.foundation.errors import FencedOut
from watchdog.foundation.model import Action, ActionStatus, EventKind, WindowPhase
from watchdog.ha.coord import Coordinator
from watchdog.pipeline.base import Decision
from watchdog.pipeline.stages import ActionLog
from watchdog.plumbing.metrics import Metrics
from watchdog.store.journal import Journal

WOULD_ROLL_BACK = "would_roll_back"  # the action-log name of a shadow decision


class Shadow:
    """Journal what a shadow decision would have done, once per window, and stop it."""

    def __init__(
        self,
        store: ActionLog,
        journal: Journal,
        coordinator: Coordinator,
        plans: Mapping[str, Plan],
        default_plan: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._journal = journal
        self._coordinator = coordinator
        self._plans = plans
        self._default = default_plan
        self._metrics = metrics

    async def __call__(self, d: Decision) -> Decision | None:
        """Pass decisions that may act; stop (and say so once) the shadow ones."""
        # A window's shadow is fixed when it opens: no need to read it again to decide.
        if not d.automatic or d.action is Action.NOTIFY or not (d.shadow or d.window.shadow):
            return d
        window = await self._store.get_window(d.window.id)
        if window is None:
            return None
        # A held (or awaiting, or confirming) window would not have acted either.
        if window.phase is not WindowPhase.WATCHING:
            return None
        token = await self._coordinator.token()
        if token is None:
            return None  # only the leader speaks for the window
        try:
            claimed = await self._store.claim_action(
                window.id, WOULD_ROLL_BACK, token=token, actor=d.actor, at=d.at
            )
            if claimed:
                await self._store.finish_action(
                    window.id,
                    WOULD_ROLL_BACK,
                    status=ActionStatus.SUCCEEDED,
                    at=d.at,
                    detail=None,
                    token=token,
                )
        except FencedOut:
            return None  # deposed meanwhile: the leader speaks for the window
        if claimed:
            await self._tell(d.but(window=window))
        return None

    async def _tell(self, d: Decision) -> None:
        window = d.window
        name = window.deployment.plan or self._default
        plan = self._plans.get(name or "")
        approval = d.action is Action.APPROVE or (plan is not None and plan.data_loss_risk)
        what = "ask an approver to roll back" if approval else "roll back"
        steps = [{"name": s.name, "kind": s.kind} for s in plan.steps] if plan else []
        planned = (
            f"plan {name} ({', '.join(s['name'] for s in steps)})" if plan else "no plan configured"
        )
        by = "rule" if d.shadow else "window"
        await self._journal.record(
            window,
            EventKind.WOULD_ROLL_BACK,
            f"shadow mode: would {what} {window.deployment.service} to "
            f"{window.deployment.previous_version or 'the previous version'} with {planned}: "
            f"{d.reason}. Nothing was done.",
            at=d.at,
            rule=d.trigger,
            data=_data(d, name, steps, approval, by),
        )
        if self._metrics is not None:
            self._metrics.would_rollback(window.deployment.service, d.trigger)


def _data(
    d: Decision, plan: str | None, steps: list[dict[str, str]], approval: bool, by: str
) -> dict[str, Any]:
    return {
        "actor": d.actor,
        "trigger": d.trigger,
        "plan": plan,
        "steps": steps,
        "needs_approval": approval,
        "shadow": by,  # what put the decision in shadow: the rule's mode or the window
        "severity": "warning",
    }
