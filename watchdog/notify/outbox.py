"""The outbox side of notifying: route an event to channels and store it before sending.

:class:`Outbox` is the journal's :class:`~watchdog.store.journal.Teller`: the journal hands it
each event right after the event is stored. It only writes rows (one per channel the routes
pick) and wakes the delivery worker, so no channel can slow the caller down.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import Event, Window
from watchdog.notify import render
from watchdog.notify.channel import Channel
from watchdog.notify.config import Route
from watchdog.notify.markers import MARKERS
from watchdog.notify.pagerduty import CLOSING
from watchdog.store.base import OutboxItem, OutboxStore

PAGERDUTY = "pagerduty"


class Outbox:
    """Routes events to channels and stores one notification per channel."""

    def __init__(
        self,
        store: OutboxStore,
        channels: Mapping[str, Channel],
        routes: Sequence[Route],
        clock: Clock,
    ) -> None:
        self._store = store
        self._channels = channels
        self._routes = tuple(routes)
        self._clock = clock
        self.wake = asyncio.Event()

    def route(self, event: Event, window: Window) -> list[str]:
        """Names of the channels that take this event."""
        if self._routes:
            sev = render.severity(event)
            service = window.deployment.service
            wanted = {c for r in self._routes if r.matches(service, sev) for c in r.channels}
            if event.kind in CLOSING:
                # A resolve follows its trigger whatever the route's min_severity: the
                # channel sends it only for a window that opened an incident.
                wanted |= {PAGERDUTY} & {
                    c for r in self._routes if r.matches(service, "critical") for c in r.channels
                }
            wanted |= MARKERS  # dashboards' deploy markers are not routed: they go everywhere
        else:
            wanted = set(self._channels)
        return [
            name
            for name, channel in self._channels.items()
            if name in wanted and channel.wants(event.kind)
        ]

    async def enqueue(self, event: Event, window: Window) -> None:
        """Store a notification per routed channel, then wake the worker."""
        if event.seq is None:
            return  # only stored events are told: the seq is the outbox's dedup key
        now = self._clock.now()
        payload = json.dumps(render.event_json(event), sort_keys=True, default=str)
        items = [
            OutboxItem(window.id, name, event.seq, payload, due_at=now, created_at=now)
            for name in self.route(event, window)
        ]
        if items:
            await self._store.enqueue_notifications(items)
            self.wake.set()
