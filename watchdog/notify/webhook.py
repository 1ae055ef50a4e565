"""Webhook channels: a Slack incoming webhook (no buttons) and a generic JSON webhook.

The generic webhook signs each body when a secret is set: ``X-Watchdog-Timestamp``
carries the Unix time and ``X-Watchdog-Signature`` is ``v1=`` + hex
HMAC-SHA256(secret, ``"{timestamp}.{body}"``), so receivers can verify and refuse stale
or replayed requests.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import Event, EventKind, Window
from watchdog.notify import render
from watchdog.notify.channel import ChannelKind, ChannelParts, post_json


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    message = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class SlackWebhookChannel:
    """Posts each event to a Slack incoming webhook: text plus blocks without buttons."""

    name = "slack_webhook"

    def __init__(
        self, client: httpx.AsyncClient, url: str, links: render.Links, timeout: float = 5.0
    ) -> None:
        self._client = client
        self._url = url
        self._links = links
        self._timeout = timeout

    def wants(self, kind: EventKind) -> bool:
        """Everything people are told."""
        return True

    async def deliver(self, event: Event, window: Window) -> None:
        """POST ``{"text", "blocks"}`` (the webhook URL is the secret: never logged)."""
        blocks = [b for b in render.blocks(window, event, self._links) if b["type"] != "actions"]
        body = render.safe_json({"text": render.slack_text(window, event), "blocks": blocks})
        await post_json(self._client, self._url, "slack webhook", content=body, limit=self._timeout)


class WebhookChannel:
    """POSTs each event as JSON, signed when a secret is configured."""

    name = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        clock: Clock,
        secret: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._url = url
        self._clock = clock
        self._secret = secret
        self._timeout = timeout

    def wants(self, kind: EventKind) -> bool:
        """Everything people are told."""
        return True

    async def deliver(self, event: Event, window: Window) -> None:
        """POST the event with the window's deployment and phase."""
        payload = {
            "event": render.event_json(event),
            "window": {
                "id": window.id,
                "phase": window.phase.value,
                "service": window.deployment.service,
                "environment": window.deployment.environment,
                "version": window.deployment.version,
                "previous_version": window.deployment.previous_version,
                "shadow": window.shadow,  # nothing acts on its own in this window
            },
            "text": render.text(window, event),
            "severity": render.severity(event),
        }
        body = render.safe_json(payload, sort_keys=True)
        headers = {}
        if self._secret:
            ts = int(self._clock.now())
            headers = {"X-Watchdog-Timestamp": str(ts), "X-Watchdog-Signature": ""}
            headers["X-Watchdog-Signature"] = sign(self._secret, ts, body)
        await post_json(
            self._client, self._url, "webhook", content=body, headers=headers, limit=self._timeout
        )


def _slack_webhook(p: ChannelParts) -> SlackWebhookChannel | None:
    n = p.settings.notify
    if n.slack_webhook_url is None:
        return None
    return SlackWebhookChannel(p.client, n.slack_webhook_url.get_secret_value(), p.links, n.timeout)


def _webhook(p: ChannelParts) -> WebhookChannel | None:
    n = p.settings.notify
    if n.webhook_url is None:
        return None
    secret = n.webhook_secret.get_secret_value() if n.webhook_secret else None
    return WebhookChannel(p.client, n.webhook_url, p.clock, secret, n.timeout)


CHANNELS = (
    ChannelKind("slack_webhook", _slack_webhook, lambda n: n.slack_webhook_url is not None),
    ChannelKind("webhook", _webhook, lambda n: n.webhook_url is not None),
)
