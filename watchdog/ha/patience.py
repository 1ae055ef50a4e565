"""Writes a rollback cannot do without, retried through a store outage.

A rollback mid-plan writes its step intents, its step results and its outcome. A
PostgreSQL blip of a few seconds must not turn any of them into a lost result (the step
would look "in doubt" afterwards) or a rollback stuck in ``rolling_back``: each is
retried with a short backoff for ``PATIENCE`` seconds, saying so once. Past that the
error propagates: the plan pauses (``PlanPaused``) and the leader's re-drive resumes it
when the store answers (``pipeline/recovery.py``). A refusal (``FencedOut``), a missing row and
a lost lease are answers, not outages: never retried (a store's ``TransientError``,
"unavailable", is an outage).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import TransientError, WatchdogError
from watchdog.ha.coord import LeadershipLost

log = structlog.get_logger("watchdog.ha.patience")

T = TypeVar("T")

PATIENCE = 30.0
"""Seconds a rollback waits for the store before it pauses for the re-drive."""

FIRST, CAP = 0.25, 2.0  # backoff between attempts, seconds


Back = Callable[[float], Awaitable[None]]
"""Told how many seconds the store was away, once a retried write landed."""


async def persist(
    clock: Clock,
    what: str,
    call: Callable[[], Awaitable[T]],
    *,
    patience: float = PATIENCE,
    back: Back | None = None,
) -> T:
    """``await call()``, retried while the store does not answer (see the module doc)."""
    started = clock.now()
    deadline = started + patience
    delay = FIRST
    told = False
    while True:
        try:
            result = await call()
        except LeadershipLost:
            raise
        except Exception as exc:
            if isinstance(exc, WatchdogError) and not isinstance(exc, TransientError):
                raise  # an answer (FencedOut, NotFound…), not an outage
            if clock.now() + delay > deadline:
                raise
            if not told:
                told = True
                log.error(
                    "the store did not answer: retrying while it is away",
                    what=what,
                    error=f"{type(exc).__name__}: {exc}",
                )
        else:
            if told and back is not None:
                await back(clock.now() - started)
            return result
        await clock.sleep(delay)
        delay = min(delay * 2, CAP)
