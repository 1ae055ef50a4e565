"""``max_open_windows``: how many windows may be open at once.

Every open window costs each rule an evaluation per interval; 2,000 of them made every
evaluation 10-25x late and the status page take 22 s. Past the limit a new deploy is
refused (:class:`~watchdog.foundation.errors.Overloaded`: the API answers 429 with this message,
deploy detection logs it) instead of slowing every window already open.

The check and the insert are one step within a process (``WindowOpener`` holds a lock
around both); replicas sharing a store may together overshoot by the deploys they admit
at the same instant, which is harmless: the limit protects the evaluation loop, not an
invariant.

Listing the open windows on every check made opening N windows quadratic (2,000 did
not finish opening in 8 minutes, bench/scale.py). The check keeps an upper bound
instead: the count at the last listing plus the windows admitted here since (closing
only lowers the true count). While that bound is under the limit the deploy is
admitted without a listing; at the limit, or when the listing is older than
:data:`RECOUNT` seconds (other replicas open windows too), the windows are listed again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from watchdog.foundation.errors import Overloaded
from watchdog.foundation.model import (
    EVALUATING_PHASES,
    TERMINAL_PHASES,
    Deployment,
    Window,
    WindowPhase,
)
from watchdog.plumbing.metrics import Metrics
from watchdog.store.base import WindowStore

log = structlog.get_logger("watchdog.capacity")

OPEN_PHASES = frozenset(WindowPhase) - TERMINAL_PHASES
RECOUNT = 10.0  # seconds a listing's count is trusted (other replicas open windows too)


class WindowLimit:
    """Refuses a deployment that would make more than ``most`` windows open."""

    def __init__(
        self,
        store: WindowStore,
        most: int,
        *,
        supersede: bool,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if most < 1:
            raise ValueError("max_open_windows must be >= 1")
        self._store = store
        self._most = most
        self._supersede = supersede
        self._metrics = metrics
        self._monotonic = monotonic
        self._bound = 0  # at least as many windows as are open (as far as this process knows)
        self._counted_at: float | None = None

    async def check(self, deployment: Deployment, *, actor: str) -> None:
        """Raise Overloaded (and log it) when ``deployment`` would open one too many.

        An admitted deployment is counted as open from then on (the caller inserts it).
        """
        now = self._monotonic()
        fresh = self._counted_at is not None and 0 <= now - self._counted_at < RECOUNT
        if not fresh or self._bound >= self._most:
            self._bound = await self._count(deployment)
            self._counted_at = now
        if self._bound < self._most:
            self._bound += 1
            return
        message = (
            f"{self._most} windows are open (max_open_windows): not watching "
            f"{deployment.service} {deployment.version}; close or abort finished "
            "windows, or raise max_open_windows"
        )
        log.error("deploy not watched: too many open windows", actor=actor, reason=message)
        if self._metrics is not None:
            self._metrics.windows_refused.labels(actor).inc()
        raise Overloaded(message)

    async def _count(self, deployment: Deployment) -> int:
        """Open windows that stay open when ``deployment`` opens (listed, up to the limit)."""
        open_now = await self._store.list_windows(phases=OPEN_PHASES, limit=self._most + 1)
        # The service's evaluating window closes as the new one opens (supersede).
        return sum(1 for w in open_now if not self._superseded_by(w, deployment))

    def _superseded_by(self, window: Window, deployment: Deployment) -> bool:
        d = window.deployment
        return (
            self._supersede
            and window.phase in EVALUATING_PHASES
            and (d.service, d.environment) == (deployment.service, deployment.environment)
        )
