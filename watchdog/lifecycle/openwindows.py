"""The engine's view of the windows being watched, so a tick need not read them all.

Reading and decoding every evaluating window from the store every second was linear in
windows (8 % of the process at 500 windows, bench/scale.py). :class:`WindowView` keeps
them in memory:

* what this process does is applied at once: a window it opens is :meth:`put` (with
  its baselines), one it closes, supersedes or aborts is :meth:`drop`-ped, one whose
  phase it changes (a hold, a decision's rollback) is re-read with :meth:`reread`;
* what other replicas sharing the store do (open, hold, abort on their API) is seen at
  the next full read, at most :data:`REFRESH` seconds later, and at once when this
  replica becomes the leader (:meth:`invalidate`).

Nothing that must be exact depends on the view: the pipeline re-reads the window and
claims its action under a fencing token, and the engine re-reads a window before it
journals a transition (a window another replica aborted a moment ago tells nothing).
"""

from __future__ import annotations

from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Window
from watchdog.store.base import WindowStore

REFRESH = 5.0  # seconds between two full reads of the evaluating windows
MOST = 1_000_000  # a full read's row limit: far beyond any max_open_windows


class WindowView:
    """The evaluating windows, read whole at most every :data:`REFRESH` seconds."""

    def __init__(self, store: WindowStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock  # the engine's: tests that move their fake clock refresh it
        self._windows: dict[str, Window] = {}
        self._read_at: float | None = None  # None: read whole at the next tick
        # what this process changed while a full read was under way: applied over it
        self._meanwhile: dict[str, Window | None] | None = None

    async def current(self) -> list[Window]:
        """The evaluating windows (read whole from the store when due)."""
        now = self._clock.now()
        if self._read_at is None or not 0 <= now - self._read_at < REFRESH:
            self._read_at, self._meanwhile = now, {}
            try:
                found = await self._store.list_windows(phases=EVALUATING_PHASES, limit=MOST)
                self._windows = {w.id: w for w in found}
                changes, self._meanwhile = self._meanwhile, None
                for window_id, window in changes.items():
                    self._set(window_id, window)
            finally:
                self._meanwhile = None
        return list(self._windows.values())

    def invalidate(self) -> None:
        """Read the windows whole at the next tick (leadership changed hands)."""
        self._read_at = None

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
