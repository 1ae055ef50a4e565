"""The Slack app channel: one message per deployment, updated as the story moves on.

The first event of a window posts the root message (``chat.postMessage``, Block Kit
with buttons and a plain-text fallback); every later event updates it in place
(``chat.update``: where the window stands, the latest news, the buttons that fit the
phase) and adds a reply in its thread. Escalations mention the on-call people again.
The root message's ``channel:ts`` is kept in the store, so restarts keep the thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from watchdog.foundation.clock import Clock, SystemClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Event, EventKind, Window
from watchdog.notify import render
from watchdog.notify.channel import ChannelKind, ChannelParts, keep_thread
from watchdog.plumbing import httpedge
from watchdog.store.base import ThreadStore

# Slack's ``ok: false`` errors worth retrying; every other one is permanent.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)

ANSWER_LIMIT = 256 << 10
"""Bytes of a Web API answer read: ``chat.*`` answers echo the message, a few KiB."""

# Events that call the on-call people by name in the thread.
_MENTION = frozenset(
    {EventKind.ESCALATED, EventKind.ROLLBACK_INEFFECTIVE, EventKind.WINDOW_EXPIRED_WHILE_HELD}
)


class SlackApi:
    """Slack's Web API (``POST {base}{method}``, JSON, bearer token) through the HTTP edge."""

    def __init__(
        self, client: httpx.AsyncClient, token: str, base_url: str, timeout: float = 5.0
    ) -> None:
        self._client = client
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout

    async def call(self, method: str, **payload: Any) -> dict[str, Any]:
        """Call ``method``; Transient/PermanentError when it did not succeed."""
        what = f"slack {method} {payload.get('channel', '')}".rstrip()
        answer = await httpedge.fetch(
            self._client, "POST", self._base + method, what=what, timeout=self._timeout,
            max_bytes=ANSWER_LIMIT, keep_head=True, json_body=payload, headers=self._headers,
        )  # fmt: skip
        data = await _data(answer)
        if answer.ok and data.get("ok") is True:
            return data
        error = str(data.get("error") or "error")[:100]
        if answer.status == 200 and error in _TRANSIENT_ERRORS:
            raise TransientError(f"{what}: {error}", retry_after=httpedge.retry_after(answer))
        httpedge.judge(answer, f"{what}: {error}")
        raise PermanentError(f"{what}: {error}")


async def _data(answer: httpedge.Answer) -> dict[str, Any]:
    if answer.truncated:
        return {}
    try:
        data = await httpedge.parse_json(answer.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class SlackChannel:
    """Posts and updates the deployment's message through :class:`SlackApi`."""

    name = "slack"

    def __init__(
        self,
        client: SlackApi,
        store: ThreadStore,
        channel: str,
        links: render.Links,
        oncall_ids: Sequence[str] = (),
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._client = client
        self._store = store
        self._channel = channel
        self._links = links
        self._oncall = tuple(oncall_ids)

    def wants(self, kind: EventKind) -> bool:
        """Everything people are told."""
        return True

    async def deliver(self, event: Event, window: Window) -> None:
        """Post the root message, or update it and reply in its thread."""
        fallback = render.slack_text(window, event)
        blocks = render.blocks(window, event, self._links)
        ref = await self._store.get_thread(window.id, self.name)
        if ref is None:
            posted = await self._client.call(
                "chat.postMessage", channel=self._channel, text=fallback, blocks=blocks
            )
            thread = f"{posted['channel']}:{posted['ts']}"
            await keep_thread(self._store, self._clock, window.id, self.name, thread)
            return
        channel, _, ts = ref.partition(":")
        await self._client.call("chat.update", channel=channel, ts=ts, text=fallback, blocks=blocks)
        reply = "\n".join([render.mentions(event), *render.slack_details(event)])
        if event.kind in _MENTION and self._oncall:
            reply = " ".join(f"<@{u}>" for u in self._oncall) + " " + reply
        await self._client.call("chat.postMessage", channel=channel, thread_ts=ts, text=reply)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees (refusals of button clicks)."""
        await self._client.call(
            "chat.postEphemeral",
            channel=channel,
            user=user,
            text=render.slack_escape(text),
        )


def _build(p: ChannelParts) -> SlackChannel | None:
    n = p.settings.notify
    if n.slack_bot_token is None:
        return None
    api = SlackApi(p.client, n.slack_bot_token.get_secret_value(), n.slack_api_url, n.timeout)
    return SlackChannel(api, p.store, n.slack_channel, p.links, n.oncall_ids, clock=p.clock)


CHANNELS = (ChannelKind("slack", _build, lambda n: n.slack_bot_token is not None),)
