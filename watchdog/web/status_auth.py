"""Who may look at the status page, and its sessions.

A ``?token=`` link with the API token or the read-only status token is traded once for
a session: a random id (256 bits) in an ``HttpOnly; SameSite=Strict`` cookie. The store
keeps only a SHA-256 of the id with a server-side expiry (``status_session_ttl``, 12 h
by default), so every replica honours it, a restart keeps it, and
``DELETE /api/v1/status/sessions`` (API token) ends every session at once. The cookie
is no longer derived from the token: two people get different sessions, and ending
them needs no token rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from watchdog.store.ephemeral import Sessions
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


class StatusSessions:
    """Issues, checks and revokes status page sessions kept in the store."""

    def __init__(self, store: Sessions, clock: Callable[[], float], ttl: float = DEFAULT_TTL):
        self._store = store
        self._clock = clock
        self.ttl = ttl

    async def issue(self) -> str:
        """A new session id (for the cookie), valid for ``ttl`` seconds."""
        session = secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.create_session(_hash(session), now=now, expires_at=now + self.ttl)
        return session

    async def valid(self, cookie: str) -> bool:
        """True when ``cookie`` names a live session (malformed values never reach the store)."""
        if not _SESSION_ID.fullmatch(cookie):
            return False
        return await self._store.session_alive(_hash(cookie), now=self._clock())

    async def revoke_all(self) -> int:
        """End every session; returns how many there were."""
        return await self._store.revoke_sessions()


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
