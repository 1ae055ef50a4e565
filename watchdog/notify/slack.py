"""The Slack app channel: one message per deployment, updated as the story moves on.

The first event of a window posts the root message (``chat.postMessage``, Block Kit
with buttons and a plain-text fallback); every later event updates it in place
(``chat.update``: where the window stands, the latest news, the buttons that fit the
phase) and adds a reply in its thread. Escalations mention the on-call people again.
The root message's ``channel:ts`` is kept in the store, so restarts keep the thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from watchdog.errors import PermanentError, TransientError
from watchdog.model import Event, EventKind, Window
from watchdog.notify import render
from watchdog.notify.channel import judge
from watchdog.store.base import ThreadStore

# Slack's ``ok: false`` errors worth retrying; every other one is permanent.
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}
)

# Events that call the on-call people by name in the thread.
_MENTION = frozenset(
    {EventKind.ESCALATED, EventKind.ROLLBACK_INEFFECTIVE, EventKind.WINDOW_EXPIRED_WHILE_HELD}
)


class SlackChannel:
    """Posts and updates the deployment's message through slack_sdk's AsyncWebClient."""

    name = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        store: ThreadStore,
        channel: str,
        links: render.Links,
        oncall_ids: Sequence[str] = (),
    ) -> None:
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
            posted = await _call(
                self._client.chat_postMessage, channel=self._channel, text=fallback, blocks=blocks
            )
            await self._store.set_thread(
                window.id, self.name, f"{posted['channel']}:{posted['ts']}"
            )
            return
        channel, _, ts = ref.partition(":")
        await _call(self._client.chat_update, channel=channel, ts=ts, text=fallback, blocks=blocks)
        reply = "\n".join([render.mentions(event), *render.slack_details(event)])
        if event.kind in _MENTION and self._oncall:
            reply = " ".join(f"<@{u}>" for u in self._oncall) + " " + reply
        await _call(self._client.chat_postMessage, channel=channel, thread_ts=ts, text=reply)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees (refusals of button clicks)."""
        await _call(
            self._client.chat_postEphemeral,
            channel=channel,
            user=user,
            text=render.slack_escape(text),
        )


async def _call(method: Callable[..., Awaitable[AsyncSlackResponse]], **kw: Any) -> Any:
    """Call a Web API method; map failures to transient or permanent errors."""
    try:
        return await method(**kw)
    except SlackApiError as exc:
        response = exc.response
        status = int(response.status_code)
        error = response.get("error") if isinstance(response.data, dict) else None
        what = f"slack {kw.get('channel', '')}: {error or 'error'}"
        if status == 200 and error in _TRANSIENT_ERRORS:
            raise TransientError(what) from exc
        judge(status, response.headers, what)
        raise PermanentError(what) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TransientError(f"slack unreachable: {type(exc).__name__}") from exc
