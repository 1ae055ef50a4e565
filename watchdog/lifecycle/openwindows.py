"""The engine's view of the windows being watched, so a tick need not read them all.

Reading and decoding every evaluating window from the store every second was linear in
windows (8 % of the process at 500 windows, bench/scale.py); every :data:`REFRESH`
seconds it still stalled the loop for half a second at 10,000 windows, and left 10,000
new objects for the collector. :class:`WindowView` keeps them in memory:

* what this process does is applied at once: a window it opens is :meth:`put` (with
  its baselines), one it closes, supersedes or aborts is :meth:`drop`-ped, one whose
  phase it changes (a hold, a decision's rollback) is re-read with :meth:`reread`;
* what other replicas sharing the store do (open, hold, abort on their API) is seen at
  the next read of what changed, at most :data:`REFRESH` seconds later: the windows whose
  ``updated_at`` is at or after a little before the last read (:data:`MARGIN` plus twice
  the clock skew a replica may have, as ``updated_at`` is stamped by the writer's clock
  and a PostgreSQL row shows only once its transaction commits);
* the windows are read whole at the start, when this replica becomes the leader
  (:meth:`invalidate`), when too much changed at once (:data:`CHANGED`), and every
  :data:`FULL` seconds: a safety net for a writer whose clock is further off than that.

Nothing that must be exact depends on the view: the pipeline re-reads the window and
claims its action under a fencing token, and the engine re-reads a window before it
journals a transition (a window another replica aborted a moment ago tells nothing).
"""

from __future__ import annotations

from typing import Protocol

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Window
from watchdog.store.base import WindowStore
from watchdog.store.feed import WindowChanges

REFRESH = 5.0  # seconds between two reads of what changed
FULL = 60.0  # seconds between two full reads of the evaluating windows
MARGIN = 20.0  # seconds a read of changes looks back beyond skew: commit delay, stalls
CHANGED = 1_000  # a read of changes' row limit: when it is reached, read whole instead
MOST = 1_000_000  # a full read's row limit: far beyond any max_open_windows


class ViewStore(WindowStore, WindowChanges, Protocol):
    """What the view reads: windows by phase, and windows by when they changed."""


class WindowView:
    """The evaluating windows: what changed read every :data:`REFRESH` seconds, all of
    them every :data:`FULL` seconds."""

    def __init__(self, store: ViewStore, clock: Clock, *, skew: float = 5.0) -> None:
        self._store = store
        self._clock = clock  # the engine's: tests that move their fake clock refresh it
        # how far before the last read a read of changes asks: two replicas' clocks may
        # each be `skew` off the store's (watchdog/ha/health.py, max_clock_skew)
        self._behind = MARGIN + 2 * skew
        self._windows: dict[str, Window] = {}
        self._tried_at: float | None = None  # the last read begun; None: read at next tick
        self._read_at: float | None = None  # when the last read that succeeded began
        self._full_at: float | None = None  # the last full read begun; None: read whole
        # what this process changed while a read was under way: applied over it
        self._meanwhile: dict[str, Window | None] | None = None

    async def current(self) -> list[Window]:
        """The evaluating windows (what changed, or all, read from the store when due)."""
        now = self._clock.now()
        if self._tried_at is None or not 0 <= now - self._tried_at < REFRESH:
            self._tried_at = now
            await self._refresh(now)
        return list(self._windows.values())

    async def _refresh(self, now: float) -> None:
        read_at, full_at = self._read_at, self._full_at
        whole = read_at is None or full_at is None or not 0 <= now - full_at < FULL
        self._meanwhile = {}
        try:
            if read_at is None or whole or not await self._read_changed(read_at, now):
                await self._read_whole(now)
            self._read_at = now
            changes, self._meanwhile = self._meanwhile, None
            for window_id, window in changes.items():
                self._set(window_id, window)
        finally:
            self._meanwhile = None

    async def _read_whole(self, now: float) -> None:
        self._full_at = now  # before the read: an invalidate() meanwhile stands
        try:
            found = await self._store.list_windows(phases=EVALUATING_PHASES, limit=MOST)
        except BaseException:
            self._full_at = None
            raise
        self._windows = {w.id: w for w in found}

    async def _read_changed(self, read_at: float, now: float) -> bool:
        """Apply the windows changed since a little before ``read_at``; False (nothing
        applied) when so many did that a full read is due."""
        since = min(read_at, now) - self._behind
        changed = await self._store.list_windows_changed(since, limit=CHANGED)
        if len(changed) >= CHANGED:
            return False
        for window in changed:
            if window.phase in EVALUATING_PHASES:
                self._windows[window.id] = window
            else:
                self._windows.pop(window.id, None)
        return True

    def invalidate(self) -> None:
        """Read the windows whole at the next tick (leadership changed hands)."""
        self._tried_at = self._full_at = None

    def put(self, window: Window) -> None:
        """A window this process opened (or changed and holds the new version of)."""
        self._set(window.id, window if window.phase in EVALUATING_PHASES else None)

    def drop(self, window_id: str) -> None:
        """A window this process closed."""
        self._set(window_id, None)

    def _set(self, window_id: str, window: Window | None) -> None:
        if self._meanwhile is not None:
            self._meanwhile[window_id] = window
        if window is None:
            self._windows.pop(window_id, None)
        else:
            self._windows[window_id] = window

    async def reread(self, window_id: str) -> Window | None:
        """Re-read one window whose phase may have changed; None once it is not watched."""
        window = await self._store.get_window(window_id)
        if window is None or window.phase not in EVALUATING_PHASES:
            self.drop(window_id)
            return None
        self._set(window_id, window)
        return window
