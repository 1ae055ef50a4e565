"""What a deposed leader does when it finds out: stop, and say so loudly.

It finds out in two ways: its own lease check before a step (``LeadershipLost``) or the
store refusing a write carried by its stale token (``FencedOut``). Either way it writes
no outcome: the new leader's recovery owns the window and finishes the rollback, so the
old one says "lost leadership; the leader resumes", never ``rollback_failed``. A refusal
is also an ERROR log line, ``watchdog_fencing_refused_total`` and ``/readyz`` (through
the coordinator) until the lease settles who leads.
"""

from __future__ import annotations

import structlog

from watchdog.foundation.errors import FencedOut
from watchdog.foundation.model import EventKind, Window
from watchdog.ha.coord import Coordinator
from watchdog.plumbing.metrics import Metrics
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.ha.fencing")


class Deposed:
    """Reports a deposed leader stopping; shared by the pipeline's stages and recovery."""

    def __init__(
        self, coordinator: Coordinator, journal: Journal, metrics: Metrics | None = None
    ) -> None:
        self._coordinator = coordinator
        self._journal = journal
        self._metrics = metrics

    async def refused(self, window: Window, exc: FencedOut, *, doing: str, at: float) -> None:
        """The store refused our token while ``doing``: loud, and leadership dropped."""
        log.error(
            "fencing token (stale) refused by the store: lost leadership; the leader resumes",
            window=window.id,
            doing=doing,
            token=exc.token,
            newest=exc.newest,
        )
        if self._metrics is not None:
            self._metrics.fencing_refused.inc()
        self._coordinator.refused(exc.token, exc.newest)
        await self._say(
            window,
            f"lost leadership while {doing} (the store refused fencing token #{exc.token}, "
            f"it has issued #{exc.newest}): the leader resumes",
            at,
            {"token": exc.token, "newest": exc.newest, "doing": doing},
        )

    async def lost(self, window: Window, reason: str, *, at: float) -> None:
        """Our own lease check said we no longer lead (frozen past the lease, or Redis)."""
        log.warning("lost leadership mid-rollback; the leader resumes", window=window.id)
        await self._say(window, f"lost leadership ({reason}): the leader resumes", at, {})

    async def _say(self, window: Window, message: str, at: float, data: dict[str, object]) -> None:
        try:
            await self._journal.record(
                window, EventKind.LEADERSHIP_LOST, message, at=at, data=data, notify=False
            )
        except Exception:
            # Informational only: the leader's recovery does not need it.
            log.exception("could not journal the loss of leadership", window=window.id)
