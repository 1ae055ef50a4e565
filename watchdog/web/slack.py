"""``POST /slack/interactions``: the buttons of the deployment message.

Slack authenticates by signature, not bearer token (the path is an open path of the
web app). The headers are judged before any of the body is read (a timestamp of at most
:data:`MAX_TIMESTAMP_DIGITS` digits within five minutes, a ``v0=`` signature of the
right length), the body is capped at :data:`MAX_BODY_BYTES` (Slack's payloads are a few
KiB), then the raw body is verified with slack_sdk's ``SignatureVerifier``: a missing
or forged signature, a malformed or stale timestamp, and a replay of a request already
handled are all refused without acting. Replays are remembered in the store for the
five minutes a signature can pass, so a captured click is refused after a restart and
on every replica.
The handler answers at once (Slack gives up after 3 s) and does the work in a
background task: authorise the user from the settings' lists, act through the window
service, record the click in the window's journal, and tell a refused user in an
ephemeral message. The message itself is updated through the outbox like any event.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import structlog
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import Queued, WatchdogError
from watchdog.foundation.model import Window
from watchdog.store.ephemeral import SeenOnce
from watchdog.web.schemas import ApiError

log = structlog.get_logger("watchdog.web.slack")

SLACK_PATH = "/slack/interactions"
TOLERANCE = 300  # seconds a request timestamp may be off (Slack's own advice)
OPS = frozenset({"ack", "hold", "resume", "rollback", "approve"})
# Slack's interaction payloads are a few KiB (the message's blocks, URL-encoded); the
# cap leaves room for a long message while an unauthenticated body costs little memory.
MAX_BODY_BYTES = 128 * 1024
MAX_TIMESTAMP_DIGITS = 12  # seconds since 1970 need 10 for centuries
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SlackActions(Protocol):
    """What a button can do (implemented by :class:`~watchdog.lifecycle.windows.WindowService`)."""

    async def hold(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Veto the automatic rollback."""
        ...

    async def resume(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Lift a hold."""
        ...

    async def rollback(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Roll back now."""
        ...

    async def approve(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Approve (and so run) a rollback that needs approval."""
        ...

    async def acknowledge(self, window_id: str, *, actor: str) -> Window:
        """Say someone is on it."""
        ...

    async def needs_approval(self, window_id: str) -> bool:
        """Whether rolling back takes an approver."""
        ...

    async def record_click(self, window_id: str, *, actor: str, action: str, outcome: str) -> None:
        """Journal a click."""
        ...


class Ephemeral(Protocol):
    """Tells one user something only they see."""

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        """Send ``text`` to ``user`` in ``channel``, visible to them alone."""
        ...


@dataclass(frozen=True)
class SlackAccess:
    """Who may press what: on-call people and approvers, by Slack user ID."""

    oncall: frozenset[str]
    approvers: frozenset[str]

    def refusal(self, user: str, op: str, needs_approval: bool) -> str | None:
        """Why ``user`` may not do ``op`` (None: allowed)."""
        if op not in OPS:
            return f"unknown action {op!r}"
        if user not in self.oncall and user not in self.approvers:
            return "you are not on the watchdog's on-call or approver list"
        if op == "approve" and user not in self.approvers:
            return "only approvers may approve a rollback"
        if op == "rollback" and needs_approval and user not in self.approvers:
            return "this rollback carries data-loss risk and needs an approver"
        return None


@dataclass(frozen=True)
class Click:
    """One button press, parsed from a block_actions payload."""

    user: str
    channel: str
    op: str
    window_id: str


class SlackInteractions:
    """The handler: verify, answer, then act in the background."""

    path = SLACK_PATH  # an open path: Slack signs its requests instead of a bearer token
    max_body = MAX_BODY_BYTES  # the route's body limit (413 past it)

    def __init__(
        self,
        actions: SlackActions,
        signing_secret: str,
        access: SlackAccess,
        tell: Ephemeral,
        clock: Clock,
        seen: SeenOnce,
    ) -> None:
        self._actions = actions
        self._verifier = SignatureVerifier(signing_secret, clock=clock)  # type: ignore[arg-type]
        self._access = access
        self._tell = tell
        self._clock = clock
        self._seen = seen  # signatures handled, for replay refusal (in the store)
        self._tasks: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        """Register ``POST /slack/interactions``."""
        app.router.add_post(SLACK_PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        """Judge the headers, then read the (capped) body and verify its signature,
        then answer at once."""
        timestamp, signature = self._judge_headers(request.headers)
        body = await request.read()
        if not self._verifier.is_valid(body, timestamp, signature):
            raise ApiError(401, "X-Slack-Signature does not match the body")
        now = self._clock.now()
        # Remembered exactly as long as the timestamp check would still let it through.
        ttl = max(1.0, int(timestamp) + TOLERANCE - now)
        if await self._seen.seen_once(f"slack:{signature}", now=now, ttl=ttl):
            log.warning("slack request replayed: ignored")
            return web.json_response({"ok": True, "ignored": "replay"})
        for click in _clicks(body):
            self._background(self._act(click))
        return web.Response(status=200)

    def _judge_headers(self, headers: Any) -> tuple[str, str]:
        """The timestamp and signature, judged before a byte of the body is read."""
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp or not signature:
            raise ApiError(401, "missing X-Slack-Signature or X-Slack-Request-Timestamp")
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise ApiError(400, "X-Slack-Request-Timestamp must be an integer")
        if len(timestamp) > MAX_TIMESTAMP_DIGITS:
            raise ApiError(400, f"X-Slack-Request-Timestamp has over {MAX_TIMESTAMP_DIGITS} digits")
        if abs(self._clock.now() - int(timestamp)) > TOLERANCE:
            raise ApiError(401, "X-Slack-Request-Timestamp is more than 5 minutes off")
        if not _SIGNATURE.fullmatch(signature):
            raise ApiError(401, "X-Slack-Signature is not a v0= HMAC-SHA256 signature")
        return str(timestamp), str(signature)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for clicks being handled (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _act(self, click: Click) -> None:
        actor = f"slack:{click.user}"
        try:
            needs = click.op in {"rollback", "approve"} and await self._actions.needs_approval(
                click.window_id
            )
            refusal = self._access.refusal(click.user, click.op, needs)
            if refusal is not None:
                await self._refuse(click, actor, refusal)
                return
            await self._perform(click, actor)
            await self._actions.record_click(
                click.window_id, actor=actor, action=click.op, outcome="done"
            )
        except Queued as queued:
            await self._queued(click, actor, queued)
        except WatchdogError as exc:
            await self._refuse(click, actor, str(exc))
        except Exception:
            log.exception("slack action failed", op=click.op, window=click.window_id)

    async def _perform(self, click: Click, actor: str) -> None:
        a, wid = self._actions, click.window_id
        if click.op == "ack":
            await a.acknowledge(wid, actor=actor)
        elif click.op == "hold":
            await a.hold(wid, actor=actor, reason="held from Slack")
        elif click.op == "resume":
            await a.resume(wid, actor=actor, reason="resumed from Slack")
        elif click.op == "rollback":
            await a.rollback(wid, actor=actor, reason=f"rolled back from Slack by {actor}")
        else:
            await a.approve(wid, actor=actor, reason=None)

    async def _queued(self, click: Click, actor: str, queued: Queued) -> None:
        # Accepted for later: say what will happen, never "Not done" (a second, manual
        # rollback would follow).
        log.info("slack action queued for the leader", op=click.op, user=click.user)
        await self._actions.record_click(
            click.window_id, actor=actor, action=click.op, outcome="queued"
        )
        text = f"Queued: the leader will roll back within {queued.within:g}s."
        try:
            await self._tell.ephemeral(click.channel, click.user, text)
        except Exception:
            log.warning("could not tell the user", user=click.user)

    async def _refuse(self, click: Click, actor: str, why: str) -> None:
        log.info("slack action refused", op=click.op, user=click.user, why=why)
        with suppress(WatchdogError):  # no such window: nothing to journal
            await self._actions.record_click(
                click.window_id, actor=actor, action=click.op, outcome=f"refused: {why}"
            )
        try:
            await self._tell.ephemeral(click.channel, click.user, f"Not done: {why}")
        except Exception:
            log.warning("could not tell the user", user=click.user)


def _clicks(body: bytes) -> list[Click]:
    """The button presses of a ``block_actions`` payload (a form field holding JSON)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError) as exc:
        raise ApiError(400, "body must be a form with a JSON 'payload' field") from exc
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise ApiError(400, "only block_actions payloads are handled")
    try:
        user = str(payload["user"]["id"])
        channel = str(
            (payload.get("channel") or {}).get("id") or payload["container"]["channel_id"]
        )
        return [
            Click(user, channel, str(a["action_id"]).removeprefix("watchdog_"), str(a["value"]))
            for a in payload["actions"]
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ApiError(400, f"block_actions payload lacks {exc}") from exc
