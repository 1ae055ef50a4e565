"""``max_open_windows``: how many windows may be open at once.

Every open window costs each rule an evaluation per interval; 2,000 of them made every
evaluation 10-25x late and the status page take 22 s. Past the limit a new deploy is
refused (:class:`~watchdog.errors.Overloaded`: the API answers 429 with this message,
deploy detection logs it) instead of slowing every window already open.

The check and the insert are one step within a process (``WindowService`` holds a lock
around both); replicas sharing a store may together overshoot by the deploys they admit
at the same instant, which is harmless: the limit protects the evaluation loop, not an
invariant.
"""

from __future__ import annotations

import structlog

from watchdog.errors import Overloaded
from watchdog.metrics import Metrics
from watchdog.model import EVALUATING_PHASES, TERMINAL_PHASES, Deployment, Window, WindowPhase
from watchdog.store.base import WindowStore

log = structlog.get_logger("watchdog.capacity")

OPEN_PHASES = frozenset(WindowPhase) - TERMINAL_PHASES


class WindowLimit:
    """Refuses a deployment that would make more than ``most`` windows open."""

    def __init__(
        self,
        store: WindowStore,
        most: int,
        *,
        supersede: bool,
        metrics: Metrics | None = None,
    ) -> None:
        if most < 1:
            raise ValueError("max_open_windows must be >= 1")
        self._store = store
        self._most = most
        self._supersede = supersede
        self._metrics = metrics

    async def check(self, deployment: Deployment, *, actor: str) -> None:
        """Raise Overloaded (and log it) when ``deployment`` would open one too many."""
        open_now = await self._store.list_windows(phases=OPEN_PHASES, limit=self._most + 1)
        # The service's evaluating window closes as the new one opens (supersede).
        staying = [w for w in open_now if not self._superseded_by(w, deployment)]
        if len(staying) < self._most:
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

    def _superseded_by(self, window: Window, deployment: Deployment) -> bool:
        d = window.deployment
        return (
            self._supersede
            and window.phase in EVALUATING_PHASES
            and (d.service, d.environment) == (deployment.service, deployment.environment)
        )
