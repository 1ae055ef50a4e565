"""The journal: every event is appended to the store, logged, then handed to the outbox.

An event to tell is stored in the outbox right after the journal write (a local insert;
the delivery worker sends it later), so a slow or failing channel can never delay
evaluation or a rollback and nothing is lost across restarts. The store write comes
first, so nothing told is unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from watchdog.foundation.model import Event, EventKind, Window
from watchdog.store.base import EventStore

log = structlog.get_logger("watchdog.journal")

# The level each event is logged at: error when a person must act now, warning when a
# person should look (the watchdog acted, could not judge, or cannot see), info for the
# rest of a window's life, debug for bookkeeping. One line per event, so one per state
# change; `grep '"level": "error"'` finds every window that needs a hand.
_ERROR = frozenset(
    {EventKind.ROLLBACK_FAILED, EventKind.ROLLBACK_INEFFECTIVE, EventKind.NOTIFY_FAILED}
)
_WARNING = frozenset(
    {
        EventKind.RULE_FIRING,
        EventKind.ROLLBACK_STARTED,
        EventKind.ROLLBACK_RESUMED,
        EventKind.STEP_FAILED,
        EventKind.ESCALATED,
        EventKind.APPROVAL_NEEDED,
        EventKind.WATCHDOG_BLIND,
        EventKind.SELECTOR_UNMATCHED,
        EventKind.WINDOW_INCONCLUSIVE,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
        EventKind.WOULD_ROLL_BACK,
        EventKind.RECOVERY_UNCONFIRMED,
        EventKind.DEPLOY_REFUSED,
        EventKind.LEADERSHIP_LOST,
    }
)
# Not RULE_INCONCLUSIVE: an outage turns every rule of the source inconclusive in every
# window at once; the one WATCHDOG_BLIND per source and window is the warning.
_DEBUG = frozenset({EventKind.STEP_STARTED, EventKind.NOTIFIED})


def level_of(kind: EventKind) -> int:
    """The stdlib level an event of ``kind`` is logged at."""
    if kind in _ERROR:
        return logging.ERROR
    if kind in _WARNING:
        return logging.WARNING
    return logging.DEBUG if kind in _DEBUG else logging.INFO


class Teller(Protocol):
    """Where told events go (the outbox): stores them for delivery, never sends inline."""

    async def enqueue(self, event: Event, window: Window) -> None:
        """Store ``event`` for every channel that takes it."""
        ...


class Journal:
    """Appends events and hands those worth telling to the outbox."""

    def __init__(self, store: EventStore, outbox: Teller | None = None) -> None:
        self._store = store
        self._outbox = outbox
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(
        self,
        window: Window,
        kind: EventKind,
        message: str,
        *,
        at: float,
        rule: str | None = None,
        data: Mapping[str, Any] | None = None,
        notify: bool = True,
    ) -> Event:
        """Append an event to the window's journal (and tell people unless told not to)."""
        event = await self._store.append_event(
            Event(window.id, at, kind, message, rule=rule, data=dict(data or {}))
        )
        self.logged(event, window)
        if notify:
            await self._enqueue(event, window)
        return event

    def logged(self, event: Event, window: Window) -> None:
        """Log an event as it is journaled (also one the store appended in a transaction
        of its own: ``PhaseJournal``)."""
        log.log(
            level_of(event.kind),
            event.message,
            kind=event.kind.value,
            window=window.id,
            service=window.deployment.service,
            version=window.deployment.version,
            # None would hide the rule an evaluation bound (watchdog.plumbing.logs.about_window).
            **({"rule": event.rule} if event.rule is not None else {}),
        )

    async def _enqueue(self, event: Event, window: Window) -> None:
        if self._outbox is None:
            return
        try:
            await self._outbox.enqueue(event, window)
        except Exception:
            # Telling people must never break evaluation or a rollback.
            log.exception("could not store the notification", window=window.id)

    def notify(self, event: Event, window: Window) -> None:
        """Hand an already journaled event to the outbox without waiting."""
        task = asyncio.create_task(self._enqueue(event, window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for hand-overs in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
