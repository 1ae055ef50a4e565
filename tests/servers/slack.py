"""A local fake of the Slack Web API (the methods the watchdog calls), for slack_sdk.

Speaks the documented wire format: ``POST /api/<method>`` with a JSON body and
``Authorization: Bearer xoxb-…``; answers ``{"ok": true, "channel": "C…", "ts": "…"}``
or ``{"ok": false, "error": "…"}`` (``invalid_auth``, ``channel_not_found``,
``message_not_found``, ``ratelimited`` with HTTP 429 and ``Retry-After``). Faults can be
scripted per request, and the server can be stopped and started again on the same port
(connection refused meanwhile). Also signs interaction requests the way Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.servers.common import free_port

CHANNELS = {"#deploys": "C0DEPLOYS", "C0DEPLOYS": "C0DEPLOYS"}


@dataclass
class Message:
    """A message as the fake workspace holds it."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class FakeSlack:
    """The fake Web API; ``calls`` records (method, body) of every accepted request."""

    token: str = "xoxb-test-token-123456"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # "500" | "429" for the next requests
    port: int = 0
    _runner: web.AppRunner | None = None
    _seq: int = 0

    @property
    def api_url(self) -> str:
        """What ``AsyncWebClient(base_url=…)`` takes."""
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        """Listen (again) on the same port."""
        self.port = self.port or free_port()
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        """Stop listening: clients get connection refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def roots(self) -> list[Message]:
        """Top-level messages (one per deployment)."""
        return [m for m in self.messages.values() if m.thread_ts is None]

    def replies(self, ts: str) -> list[Message]:
        """Messages in the thread of ``ts``."""
        return [m for m in self.messages.values() if m.thread_ts == ts]

    async def _handle(self, request: web.Request) -> web.Response:
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "429":
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
                )
            return web.Response(status=int(fault), text="upstream trouble")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        body = await request.json()
        method = request.match_info["method"]
        self.calls.append((method, body))
        handler = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "chat.postEphemeral": self._ephemeral,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(body))

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = CHANNELS.get(body.get("channel", ""))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        self._seq += 1
        ts = f"{int(time.time())}.{self._seq:06d}"
        thread = body.get("thread_ts")
        if thread is not None and thread not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        msg = Message(channel, ts, body.get("text", ""), body.get("blocks") or [], thread)
        self.messages[ts] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": msg.text}}

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        msg = self.messages.get(body.get("ts", ""))
        if msg is None or msg.channel != body.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        msg.text = body.get("text", msg.text)
        msg.blocks = body.get("blocks") or []
        msg.updates += 1
        return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text}

    def _ephemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        self.ephemerals.append(body)
        return {"ok": True, "message_ts": f"{time.time():.6f}"}


def button_ids(message: Message) -> list[str]:
    """The action_ids of a message's buttons."""
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def interaction(user: str, action: str, window_id: str, *, channel: str = "C0DEPLOYS") -> bytes:
    """A block_actions request body as Slack sends it (form field ``payload``)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "api_app_id": "A0APP",
        "token": "verification-token-deprecated",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": channel},
        "channel": {"id": channel, "name": "deploys"},
        "trigger_id": "123.456.abc",
        "response_url": "https://hooks.slack.com/actions/T0TEAM/1/abc",
        "actions": [
            {
                "type": "button",
                "action_id": f"watchdog_{action}",
                "block_id": f"watchdog:{window_id}",
                "value": window_id,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(secret: str, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:".encode() + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }
