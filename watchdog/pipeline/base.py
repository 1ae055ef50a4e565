"""The decision path as explicit stages, the way Alertmanager's notify pipeline is built.

A :class:`Decision` flows through each :class:`Stage` in order; a stage returns the
decision (maybe enriched) to continue, or None to stop. ``Decision.settled`` resolves
as soon as the outcome is known to callers that cannot wait for a whole rollback (the
API, Slack): True once the action is claimed, False when a stage stopped it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from watchdog.actions.plan import PlanOutcome
from watchdog.evaluation.evaluate import Evaluation
from watchdog.foundation.model import Action, Event, Window
from watchdog.ha.inflight import InFlight
from watchdog.plumbing.logs import about_window

log = structlog.get_logger("watchdog.pipeline")


@dataclass(frozen=True)
class Decision:
    """A request to act on a window, from a firing rule or a person."""

    window: Window
    action: Action
    trigger: str  # the rule that fired, or "manual"
    actor: str  # "rule:NAME", "api", "slack:U123", ...
    reason: str
    at: float
    evaluation: Evaluation | None = None
    token: int | None = None
    outcome: PlanOutcome | None = None
    events: tuple[Event, ...] = ()
    grace: float = 0.0  # seconds to wait (and allow a Hold) before an automatic rollback
    approved_by: str | None = None  # the approver who allowed a rollback needing approval
    shadow: bool = False  # the rule that fired is in shadow mode: journal, never act
    settled: asyncio.Future[bool] = field(default_factory=asyncio.Future, compare=False)

    @property
    def automatic(self) -> bool:
        """True when a rule, not a person, asked for this."""
        return self.trigger != "manual"

    def but(self, **changes: object) -> Decision:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


class Stage(Protocol):
    """One step of the decision path."""

    async def __call__(self, decision: Decision, /) -> Decision | None:
        """Continue with a decision, or return None to stop here."""
        ...


def settle(decision: Decision, value: bool) -> None:
    """Resolve ``decision.settled`` once."""
    if not decision.settled.done():
        decision.settled.set_result(value)


class Pipeline:
    """Stages run in order until one stops the decision."""

    def __init__(self, stages: Sequence[Stage], inflight: InFlight | None = None) -> None:
        self.stages = tuple(stages)
        self.inflight = inflight or InFlight()

    async def run(self, decision: Decision) -> Decision | None:
        """Run every stage; returns the final decision or None if a stage stopped it.

        The window is marked in flight meanwhile, so recovery leaves it alone; every line
        logged inside carries the window, service, version and rule."""
        d = decision.window.deployment
        rule = decision.trigger if decision.automatic else None
        with (
            about_window(decision.window.id, d.service, d.version, rule),
            self.inflight.running(decision.window.id),
        ):
            return await self._run(decision)

    async def _run(self, decision: Decision) -> Decision | None:
        current: Decision | None = decision
        try:
            for stage in self.stages:
                assert current is not None
                current = await stage(current)
                if current is None:
                    log.debug("decision stopped", stage=type(stage).__name__)
                    break
        finally:
            settle(decision, current is not None)
        return current

    def describe(self) -> list[str]:
        """Stage names, in order."""
        return [type(s).__name__ for s in self.stages]
