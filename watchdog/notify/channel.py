"""The Channel port: one delivery of one event to one place (Slack, a webhook, PagerDuty).

A channel raises :class:`TransientError` (the worker retries: refused connections,
timeouts, 5xx, 429 with its ``Retry-After``) or :class:`PermanentError` (other 4xx: the
worker gives up and reports it in the journal). Shared HTTP judging lives here.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx

from watchdog.actions.http import parse_retry_after
from watchdog.errors import PermanentError, TransientError
from watchdog.model import Event, EventKind, Window


class Channel(Protocol):
    """Delivers events of one kind of destination."""

    name: str

    def wants(self, kind: EventKind) -> bool:
        """Whether this channel has anything to say about events of ``kind``."""
        ...

    async def deliver(self, event: Event, window: Window) -> None:
        """Send one event; raise Transient/PermanentError when it did not land."""
        ...


def judge(status: int, headers: Any, what: str, body: str = "") -> None:
    """Raise the error an HTTP status stands for (2xx returns)."""
    if 200 <= status < 300:
        return
    detail = f"{what}: HTTP {status} {body[:200]}".rstrip()
    if status == 429:
        retry = parse_retry_after(headers.get("Retry-After"), headers.get("Date"), time.time())
        raise TransientError(detail, retry_after=retry)
    if status >= 500 or status == 408:
        raise TransientError(detail)
    raise PermanentError(detail)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    *,
    content: bytes,
    headers: dict[str, str] | None = None,
    limit: float = 5.0,
) -> httpx.Response:
    """POST a JSON body; transport failures are transient, statuses are judged."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    try:
        response = await client.post(url, content=content, headers=sent, timeout=limit)
    except httpx.TransportError as exc:
        raise TransientError(f"{what}: {type(exc).__name__}") from exc
    judge(response.status_code, response.headers, what, response.text)
    return response
