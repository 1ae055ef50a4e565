"""Which windows this process is deciding about right now.

A rollback running here is not "in doubt": a lease renewed or re-taken by this same
replica must not make recovery treat its running step as interrupted. The live
pipeline marks a window from its first stage to its last (so from before the claim to
after the outcome), recovery marks the window it resumes, and recovery (at a new lease
and at every re-drive) leaves marked windows alone.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

INSTANCE = uuid.uuid4().hex[:12]
"""This process, as step intents name it (``by``): recovery in the process that wrote an
intent knows the step is not running any more when nothing here runs it."""


class InFlight:
    """Per-process marks, counted (two decisions about one window may overlap)."""

    def __init__(self) -> None:
        self._marks: Counter[str] = Counter()

    @contextmanager
    def running(self, window_id: str) -> Iterator[None]:
        """Mark ``window_id`` for the duration of the block."""
        self._marks[window_id] += 1
        try:
            yield
        finally:
            self._marks[window_id] -= 1
            if self._marks[window_id] <= 0:
                del self._marks[window_id]

    def busy(self, window_id: str) -> bool:
        """True while something in this process decides about ``window_id``."""
        return self._marks[window_id] > 0
