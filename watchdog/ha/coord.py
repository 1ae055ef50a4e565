"""Who may act: the leader lease and its fencing token.

Only the leader acts, and every action-log write carries the fencing token it got when
it became leader; the store refuses tokens older than the newest it has seen, so a
paused former leader cannot act after another replica took over.
"""

from __future__ import annotations

from typing import Protocol


class LeadershipLost(Exception):
    """This replica's fencing token is no longer current: stop acting at once."""


class Coordinator(Protocol):
    """The leadership port."""

    async def token(self) -> int | None:
        """The current fencing token if this replica leads, else None."""
        ...

    async def close(self) -> None:
        """Give up leadership."""
        ...


class SingleNode:
    """The embedded default: one replica, always the leader, no Redis needed."""

    async def token(self) -> int | None:
        """Always token 0: nothing else can hold a newer one."""
        return 0

    async def close(self) -> None:
        """Nothing to release."""
