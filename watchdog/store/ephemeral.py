"""Short-lived security records the store keeps so every replica, and a restarted
process, agree on them: keys seen once (Slack replay refusal) and status page sessions.

Both expire server-side and are pruned in small batches as new ones are written, so
the tables stay as small as the traffic of the last few minutes (or hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

PRUNE_BATCH = 200  # expired rows deleted per write: bounded work on the request path


class SeenOnce(Protocol):
    """Remembers keys for a while: the second sighting of a live key is a replay."""

    async def seen_once(self, key: str, *, now: float, ttl: float) -> bool:
        """True when ``key`` was recorded before and has not expired; otherwise record
        it until ``now + ttl`` and return False. One caller wins across replicas."""
        ...


class Sessions(Protocol):
    """Status page sessions, by a hash of their random id (never the id itself), each
    tagged with the token that opened it."""

    async def create_session(
        self, id_hash: str, *, token_tag: str, now: float, expires_at: float, keep: SessionCaps
    ) -> None:
        """Store a new session until ``expires_at``; then end the oldest beyond ``keep``."""
        ...

    async def session_tag(self, id_hash: str, *, now: float) -> str | None:
        """The tag of the token that opened a live session (None: none, or expired)."""
        ...

    async def revoke_sessions(self, id_hash: str | None = None) -> int:
        """End one session (or every one with ``None``); returns how many ended."""
        ...


@dataclass(frozen=True)
class SessionCaps:
    """Sessions kept at most: per token tag, and in all (stale tags included)."""

    per_tag: int
    total: int
