"""The Channel port: one delivery of one event to one place (Slack, a webhook, PagerDuty).

A channel raises :class:`TransientError` (the worker retries: refused connections,
timeouts, 5xx, 429 with its ``Retry-After``) or :class:`PermanentError` (other 4xx: the
worker gives up and reports it in the journal). Requests and their judging go
through :mod:`watchdog.httpedge`.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from watchdog import httpedge
from watchdog.model import Event, EventKind, Window

ANSWER_LIMIT = 64 << 10
"""Bytes of a channel's answer kept: they acknowledge, they do not send documents."""


class Channel(Protocol):
    """Delivers events of one kind of destination."""

    name: str

    def wants(self, kind: EventKind) -> bool:
        """Whether this channel has anything to say about events of ``kind``."""
        ...

    async def deliver(self, event: Event, window: Window) -> None:
        """Send one event; raise Transient/PermanentError when it did not land."""
        ...


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
