"""Who may act: the leader lease and its fencing token.

Only the leader acts, and every outcome write carries the fencing token it got when it
became leader; the store refuses tokens older than the newest it has issued, so a
paused former leader cannot act or rewrite an outcome after another replica took over.

Tokens come from the store, not only from Redis: each acquisition asks the store for a
token above every one it has issued or accepted (:meth:`Store.advance_fence`), so a
Redis that restarts without its data (its counter back at 1) cannot hand out a token
the store would refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger("watchdog.ha")

Fence = Callable[[int], Awaitable[int]]
"""``Store.advance_fence``: a token above every one issued so far, at least the argument."""


class LeadershipLost(Exception):
    """This replica's fencing token is no longer current: stop acting at once."""


class PlanPaused(Exception):
    """A step's intent could not be journaled (the store did not answer): the step is
    not run, the rollback stays claimed, and the leader's re-drive resumes it once the
    store answers again (``pipeline/recovery.py``). Not a failure of the rollback."""


class Coordinator(Protocol):
    """The leadership port."""

    async def token(self) -> int | None:
        """The current fencing token if this replica leads, else None."""
        ...

    async def carry(self, held: int) -> int | None:
        """The token to go on with work begun under ``held``, or None.

        The current token when this replica has led without a break since ``held`` was
        issued (a lease renewed, or re-taken with no other token issued in between: a
        Redis restart), so its running steps stay its own; None when it does not lead or
        another replica may have led since (then recovery owns the work).
        """
        ...

    def refused(self, token: int, newest: int) -> None:
        """The store refused ``token`` (it has seen ``newest``): stop leading with it."""
        ...

    def problem(self) -> str | None:
        """Why this replica cannot do its part right now (``/readyz``), or None."""
        ...

    async def close(self) -> None:
        """Give up leadership."""
        ...


class SingleNode:
    """The embedded default: one replica, always the leader, no Redis needed.

    With ``fence`` (the store's :meth:`advance_fence`) its token is taken from the store
    on first use and again after a refusal (then ``on_acquire`` runs, as on a lease
    acquisition: recovery resumes what the refusal stopped), so a store that another
    deployment (or an HA setup) fenced at a higher token never blocks it. Without
    ``fence``, the token is 0.
    """

    def __init__(
        self, fence: Fence | None = None, on_acquire: Callable[[], None] | None = None
    ) -> None:
        self._fence = fence
        self._on_acquire = on_acquire
        self._token: int | None = None if fence is not None else 0
        self._refused: str | None = None
        self._taking = asyncio.Lock()  # concurrent first callers must share one token

    async def token(self) -> int | None:
        """The token issued by the store (0 without one)."""
        if self._token is not None or self._fence is None:
            return self._token
        async with self._taking:
            if self._token is None:
                self._token = await self._fence(0)
                if self._refused is not None and self._on_acquire is not None:
                    self._on_acquire()
                self._refused = None
        return self._token

    async def carry(self, held: int) -> int | None:
        """The token while it is still ``held``: a refusal breaks the line."""
        current = await self.token()
        return current if current == held else None

    def refused(self, token: int, newest: int) -> None:
        """Someone else fenced the store: take a newer token next time, and say so."""
        if self._fence is None or token != self._token:
            return  # an older token of ours, already replaced
        self._refused = f"fencing token #{token} refused by the store (newest #{newest})"
        self._token = None

    def problem(self) -> str | None:
        """A refusal not yet followed by a newer token."""
        return self._refused

    async def close(self) -> None:
        """Nothing to release."""
