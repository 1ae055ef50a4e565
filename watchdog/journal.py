"""The journal: every event is appended to the store, then handed to the notifier.

Notification runs in a background task so a slow or failing channel can never delay
evaluation or a rollback; the store write comes first so nothing told is unrecorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog

from watchdog.model import Event, EventKind, Window
from watchdog.notify.base import Notifier
from watchdog.store.base import Store

log = structlog.get_logger("watchdog.journal")


class Journal:
    """Appends events and tells people about them."""

    def __init__(self, store: Store, notifier: Notifier) -> None:
        self._store = store
        self._notifier = notifier
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
            self.notify(event, window)
        return event

    def notify(self, event: Event, window: Window) -> None:
        """Hand an event to the notifier without waiting for it."""
        task = asyncio.create_task(self._notifier.notify(event, window))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for notifications in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
