"""The Channel port: one delivery of one event to one place (Slack, a webhook, PagerDuty).

A channel raises :class:`TransientError` (the worker retries: refused connections,
timeouts, 5xx, 429 with its ``Retry-After``) or :class:`PermanentError` (other 4xx: the
worker gives up and reports it in the journal). Requests and their judging go
through :mod:`watchdog.plumbing.httpedge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from watchdog.foundation.model import Event, EventKind, Window
from watchdog.ha.patience import persist
from watchdog.plumbing import httpedge

if TYPE_CHECKING:
    from watchdog.foundation.clock import Clock
    from watchdog.notify.config import NotifySettings
    from watchdog.notify.render import Links
    from watchdog.settings import Settings
    from watchdog.store.base import ThreadStore

ANSWER_LIMIT = 64 << 10
"""Bytes of a channel's answer kept: they acknowledge, they do not send documents."""


async def keep_thread(
    store: ThreadStore, clock: Clock, window_id: str, channel: str, ref: str
) -> None:
    """Store the reference to what a channel has just sent, through a store blip.

    The message is out: had this write failed, the delivery would count as failed and be
    retried, sending it again (a second Slack root message; a second PagerDuty trigger,
    seen when PostgreSQL went down mid-rollback, tests/e2e/test_ha_faults.py). Like the
    outbox's "sent" mark, it waits out an outage (ha/patience.py).
    """
    await persist(
        clock,
        f"the {channel} thread of a notification",
        lambda: store.set_thread(window_id, channel, ref),
    )


class Channel(Protocol):
    """Delivers events of one kind of destination."""

    name: str

    def wants(self, kind: EventKind) -> bool:
        """Whether this channel has anything to say about events of ``kind``."""
        ...

    async def deliver(self, event: Event, window: Window) -> None:
        """Send one event; raise Transient/PermanentError when it did not land."""
        ...


@dataclass(frozen=True)
class ChannelParts:
    """What a channel's builder may use."""

    settings: Settings
    store: Any  # the store (Slack and PagerDuty keep their threads in it)
    client: httpx.AsyncClient  # the app's shared client
    clock: Clock
    links: Links  # the status page and Prometheus graph links messages carry


@dataclass(frozen=True)
class ChannelKind:
    """One kind of notification channel, in the module that delivers it: its name (the
    outbox's ``channel``), the channel built from settings (None when not configured),
    and ``routed``: whether the ``notify`` section configures it, for routes and the
    enabled list (None: not a route's target, as deploy markers). Every field is
    required: an entry that forgets one fails at import."""

    name: str
    build: Callable[[ChannelParts], Channel | None]
    routed: Callable[[NotifySettings], bool] | None


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    *,
    content: bytes,
    headers: dict[str, str] | None = None,
    limit: float = 5.0,
) -> httpedge.Answer:
    """POST a JSON body through the HTTP edge; failures are transient, statuses judged."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    answer = await httpedge.fetch(
        client, "POST", url, what=what, timeout=limit, max_bytes=ANSWER_LIMIT, keep_head=True,
        content=content, headers=sent,
    )  # fmt: skip
    httpedge.judge(answer, what)
    return answer
