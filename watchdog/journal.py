"""The journal: every event is appended to the store, then handed to the notifier.

With an outbox, an event to tell is stored in the outbox right after the journal write
(a local insert; the delivery worker sends it later), so a slow or failing channel can
never delay evaluation or a rollback and nothing is lost across restarts. The notifier
(the log) runs in a background task. The store write comes first, so nothing told is
unrecorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import Any

import structlog

from watchdog.model import Event, EventKind, Window
from watchdog.notify.base import Notifier
from watchdog.store.base import Store

log = structlog.get_logger("watchdog.journal")


class Journal:
    """Appends events and tells people about them."""

    def __init__(self, store: Store, notifier: Notifier, outbox: Notifier | None = None) -> None:
        self._store = store
        self._notifier = notifier
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
        """Append an event to the window's journal (and notify unless told not to)."""
        event = await self._store.append_event(
            Event(window.id, at, kind, message, rule=rule, data=dict(data or {}))
        )
        log.info(
            message,
            kind=kind.value,
            window=window.id,
            service=window.deployment.service,
            version=window.deployment.version,
            rule=rule,
        )
        if notify:
            await self._enqueue(event, window)
            self._background(self._notifier.notify(event, window))
        return event

    async def _enqueue(self, event: Event, window: Window) -> None:
        if self._outbox is None:
            return
        try:
            await self._outbox.notify(event, window)
        except Exception:
            # Telling people must never break evaluation or a rollback.
            log.exception("could not store the notification", window=window.id)

    def notify(self, event: Event, window: Window) -> None:
        """Hand an event to the outbox and the notifier without waiting for them."""
        self._background(self._enqueue(event, window))
        self._background(self._notifier.notify(event, window))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for notifications in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
