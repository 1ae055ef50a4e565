"""Who may look at the status page, and its sessions.

A ``?token=`` link with the API token or the read-only status token is traded once for
a session: a random id (256 bits) in an ``HttpOnly; SameSite=Strict`` cookie. The store
keeps only a SHA-256 of the id with a server-side expiry (``status_session_ttl``, 12 h
by default), so every replica honours it, a restart keeps it, and
``DELETE /api/v1/status/sessions`` (API token) ends every session at once. The cookie
is no longer derived from the token: two people get different sessions, and ending
them needs no token rotation.

Issue 25: each session is bound to the token that opened it (a tag derived from the
token is stored with it): once that token is changed (a restart with a new one) its
sessions open nothing. ``POST /sign-out`` ends the reader's own session. Sessions are
capped per token (``status_max_sessions``, the oldest ends first; twice that in all),
and sign-ins per token are rate-limited (``status_sign_ins_per_minute``: a burst of
that many, refilled evenly; beyond it a 429), so one token holder cannot mint
thousands.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from watchdog.store.ephemeral import SessionCaps, Sessions
from watchdog.web.openapi import OPENAPI_PARTS, OpenApiPart, _errors

SESSIONS_PATH = "/api/v1/status/sessions"
DEFAULT_TTL = 12 * 3600.0
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32)


@dataclass(frozen=True)
class StatusAuth:
    """Which credentials open the page."""

    tokens: tuple[bytes, ...]  # the API token and the read-only status token, when set
    public: bool = False
    secure_cookie: bool = False  # set when the page is served over https

    @property
    def open(self) -> bool:
        """True when no credential is needed."""
        return self.public or not self.tokens

    def matching(self, given: str) -> bytes | None:
        """The configured token equal to ``given`` (constant-time), or None."""
        raw = given.encode("utf-8", "replace")
        if not raw:  # an empty token never matches
            return None
        return next((t for t in self.tokens if t and hmac.compare_digest(raw, t)), None)


class TooManySignIns(Exception):
    """Sign-ins with one token came faster than the limit; retry after ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many sign-ins with this token: retry in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionLimits:
    """How many sessions a token keeps, and how fast it may open new ones."""

    per_token: int = 500
    sign_ins_per_minute: int = 30


class StatusSessions:
    """Issues, checks and revokes status page sessions kept in the store."""

    def __init__(
        self,
        store: Sessions,
        clock: Callable[[], float],
        ttl: float = DEFAULT_TTL,
        limits: SessionLimits = SessionLimits(),
    ) -> None:
        self._store = store
        self._clock = clock
        self.ttl = ttl
        self._limits = limits
        # Per token tag: (sign-ins left, when counted). In memory: a replica's own rate.
        self._buckets: dict[str, tuple[float, float]] = {}

    async def issue(self, token: bytes) -> str:
        """A new session id (for the cookie) bound to ``token``, valid for ``ttl``
        seconds; :class:`TooManySignIns` past the token's rate."""
        tag, now = token_tag(token), self._clock()
        self._spend(tag, now)
        session = secrets.token_urlsafe(32)
        keep = SessionCaps(per_tag=self._limits.per_token, total=2 * self._limits.per_token)
        await self._store.create_session(
            _hash(session), token_tag=tag, now=now, expires_at=now + self.ttl, keep=keep
        )
        return session

    def _spend(self, tag: str, now: float) -> None:
        size = float(self._limits.sign_ins_per_minute)
        left, at = self._buckets.get(tag, (size, now))
        left = min(size, left + max(0.0, now - at) * size / 60.0)
        if left < 1.0 - 1e-9:  # float sums of refills: Retry-After seconds later, it is 1
            raise TooManySignIns((1.0 - left) * 60.0 / size)
        self._buckets[tag] = (max(0.0, left - 1.0), now)

    async def valid(self, cookie: str, tokens: Collection[bytes]) -> bool:
        """True when ``cookie`` names a live session opened by one of ``tokens`` (the
        ones configured now); malformed values never reach the store."""
        if not _SESSION_ID.fullmatch(cookie):
            return False
        tag = await self._store.session_tag(_hash(cookie), now=self._clock())
        if tag is None:
            return False
        if any(hmac.compare_digest(tag, token_tag(t)) for t in tokens):
            return True
        await self._store.revoke_sessions(_hash(cookie))  # its token was changed
        return False

    async def sign_out(self, cookie: str) -> bool:
        """End the session ``cookie`` names; False when there was none."""
        if not _SESSION_ID.fullmatch(cookie):
            return False
        return await self._store.revoke_sessions(_hash(cookie)) > 0

    async def revoke_all(self) -> int:
        """End every session; returns how many there were."""
        return await self._store.revoke_sessions()


def token_tag(token: bytes) -> str:
    """What a session stores of the token that opened it: enough to tell a changed
    token, useless to sign in with (a keyed, truncated hash of a strong token)."""
    return hashlib.sha256(b"watchdog status session\0" + token).hexdigest()[:32]


def _hash(session: str) -> str:
    # The store never holds a usable cookie: a leaked table opens nothing.
    return hashlib.sha256(session.encode()).hexdigest()


SESSIONS = web.AppKey("watchdog.status_sessions", StatusSessions)


def add_session_routes(app: web.Application, sessions: StatusSessions) -> None:
    """``DELETE /api/v1/status/sessions``: sign everyone out of the status page."""
    app[SESSIONS] = sessions

    async def revoke(request: web.Request) -> web.Response:
        revoked = await request.app[SESSIONS].revoke_all()
        return web.json_response({"revoked": revoked})

    app.router.add_delete(SESSIONS_PATH, revoke)
    app.setdefault(OPENAPI_PARTS, []).append(_openapi_part())


def _openapi_part() -> OpenApiPart:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["revoked"],
        "properties": {"revoked": {"type": "integer", "minimum": 0}},
    }
    op = {
        "tags": ["operations"],
        "operationId": "revokeStatusSessions",
        "summary": "Sign everyone out of the status page (every session ends now).",
        "responses": {
            "200": {
                "description": "Sessions ended.",
                "content": {"application/json": {"schema": schema}},
            },
            **_errors(401),
        },
    }
    return OpenApiPart(paths={SESSIONS_PATH: {"delete": op}})
