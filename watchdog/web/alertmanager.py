"""``POST /api/v1/alertmanager``: Alertmanager's webhook (payload version 4), and
``GET /api/v1/alerts``: what it has sent.

Alertmanager retries a notification only on 5xx and drops it on any 4xx, so a
well-formed, authenticated payload is never refused with a 4xx: bodies up to the
receiver's own limit (``alertmanager_max_body_bytes``, far above thousands of alerts)
are read, unknown extra fields are ignored, and anything that goes wrong after
validation (a busy store, too many deliveries at once) answers 503 so it is retried.
Malformed JSON (400), a payload that is not version 4 or lacks fields (422), the
wrong content type (415) and wrong credentials (401) are the sender's mistakes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchdog.foundation.alerts import Alert, AlertLimits, AlertStatus, bounded
from watchdog.lifecycle.inbox import AlertInbox
from watchdog.web.alertmanager_openapi import alertmanager_part
from watchdog.web.alertmanager_schema import AlertListOut, AlertOut, AlertQuery, WebhookPayload
from watchdog.web.deadlines import authenticated
from watchdog.web.openapi import OPENAPI_PARTS
from watchdog.web.schemas import ApiError

RECEIVER_PATH = "/api/v1/alertmanager"
ALERTS_PATH = "/api/v1/alerts"
# Parsing a body this large would stall the event loop (and every tick): use a thread.
_THREAD_PARSE_BYTES = 256 * 1024

log = structlog.get_logger("watchdog.web.alertmanager")


@dataclass(frozen=True)
class ReceiverAuth:
    """The receiver's own credentials: a bearer token and/or a basic-auth pair."""

    token: bytes | None = None
    username: bytes | None = None
    password: bytes | None = None

    @property
    def configured(self) -> bool:
        """Whether the receiver checks credentials itself (else the API's token applies)."""
        return self.token is not None or self.username is not None

    def allows(self, header: str) -> bool:
        """Whether an ``Authorization`` header carries valid credentials."""
        scheme, _, value = header.strip().partition(" ")
        given = value.strip().encode("utf-8", "replace")
        if not given:  # a bare "Bearer" or "Basic" never passes
            return False
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(given, self.token)
        if scheme.lower() == "basic" and self.username is not None:
            return self._basic(given)
        return False

    def _basic(self, given: bytes) -> bool:
        try:
            user, _, password = base64.b64decode(given, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        ok_user = hmac.compare_digest(user, self.username or b"")
        ok_password = hmac.compare_digest(password, self.password or b"")
        return ok_user and ok_password


@dataclass
class Receiver:
    """What the receiver's handlers need, stored on the app under :data:`RECEIVER`."""

    inbox: AlertInbox
    auth: ReceiverAuth = field(default_factory=ReceiverAuth)
    max_inflight: int = 4
    limits: AlertLimits = field(default_factory=AlertLimits)
    busy: int = 0  # deliveries being handled right now (one event loop: no lock needed)


RECEIVER = web.AppKey("watchdog.alertmanager_receiver", Receiver)


class ReceiptOut(BaseModel):
    """What a delivery did: alerts in it, new occurrences, windows evaluated now."""

    model_config = ConfigDict(frozen=True)

    status: str = "ok"
    received: int
    new: int
    windows: list[str] = Field(default_factory=list)


def add_alertmanager_routes(app: web.Application, receiver: Receiver) -> None:
    """Register the receiver and the alert list on ``app``."""
    app[RECEIVER] = receiver
    app.router.add_post(RECEIVER_PATH, receive_alerts)
    app.router.add_get(ALERTS_PATH, list_alerts)
    part = alertmanager_part(RECEIVER_PATH, ALERTS_PATH, own_auth=receiver.auth.configured)
    app.setdefault(OPENAPI_PARTS, []).append(part)


async def receive_alerts(request: web.Request) -> web.Response:
    """``POST /api/v1/alertmanager``: record a notification's alerts."""
    receiver = request.app[RECEIVER]
    _authenticate(request, receiver.auth)
    if receiver.busy >= receiver.max_inflight:
        raise ApiError(503, "receiver busy, retry later", headers={"Retry-After": "1"})
    receiver.busy += 1
    try:
        payload = await _read_payload(request)
        try:
            receipt = await receiver.inbox.receive(_bounded(payload, receiver.limits))
        except Exception as exc:
            # Never a 4xx once the payload is good: Alertmanager would drop it.
            log.exception("recording alerts failed", group=payload.group_key[:200])
            raise ApiError(503, f"cannot record alerts now: {type(exc).__name__}") from None
    finally:
        receiver.busy -= 1
    out = ReceiptOut(received=receipt.received, new=receipt.new, windows=receipt.windows)
    return web.json_response(text=out.model_dump_json())


def _bounded(payload: WebhookPayload, limits: AlertLimits) -> list[Alert]:
    """The payload's alerts with over-long values truncated (logged, never refused)."""
    out: list[Alert] = []
    cut: list[str] = []
    for alert in payload.to_alerts():
        fitted, was_cut = bounded(alert, limits)
        out.append(fitted)
        if was_cut:
            cut.append(alert.fingerprint)
    if cut:
        log.warning("alert values truncated", alerts=len(cut), fingerprints=cut[:10])
    return out


def _authenticate(request: web.Request, auth: ReceiverAuth) -> None:
    if not auth.configured:
        return  # the API's bearer token middleware has already checked
    if not auth.allows(request.headers.get("Authorization", "")):
        raise ApiError(
            401,
            "missing or wrong receiver credentials",
            headers={"WWW-Authenticate": 'Basic realm="watchdog-alertmanager"'},
        )
    authenticated(request)  # a large batch may take its time to arrive: not evictable


async def _read_payload(request: web.Request) -> WebhookPayload:
    if request.content_type != "application/json":
        raise ApiError(
            415, f"content type must be application/json, not {request.content_type[:80]}"
        )
    raw = await request.read()
    if not raw:
        raise ApiError(400, "a JSON object body is required")
    if len(raw) < _THREAD_PARSE_BYTES:
        return _parse(raw)
    return await asyncio.to_thread(_parse, raw)


def _parse(raw: bytes) -> WebhookPayload:
    # pydantic-core parses and validates in one pass, without building the dicts first
    # (several times faster on thousands of alerts); bad JSON is still a 400.
    try:
        return WebhookPayload.model_validate_json(raw)
    except ValidationError as exc:
        problem = next((e for e in exc.errors() if e["type"] == "json_invalid"), None)
        if problem is None:
            raise
        raise ApiError(400, f"malformed JSON: {problem['msg'][:200]}") from None


async def list_alerts(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts``: recorded alerts, newest first, in a window or not."""
    query = AlertQuery.model_validate(dict(request.query))
    store = request.app[RECEIVER].inbox.store
    status = AlertStatus(query.status) if query.status is not None else None
    alerts = await store.list_alerts(status=status, limit=query.limit)
    out = AlertListOut(alerts=[AlertOut.of(a) for a in alerts])
    return web.json_response(text=out.model_dump_json())
