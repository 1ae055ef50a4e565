"""Test-only crash points: die with SIGKILL at a named instant of a rollback.

The crash-safety tests (tests/e2e/test_crash_safety.py) kill a real ``watchdog serve``
at precise points to show a restart resumes correctly. A point is reached by name;
the process dies only if ``WATCHDOG_TEST_CRASH_AT`` (``Settings.test_crash_at``) names
exactly that point. Unset — always, outside those tests — every call is a no-op.

Points (``STEP``/``CHANNEL`` are names from the configuration):

- ``decided``: a rollback decision passed Gate, Dedup and Grace; nothing claimed yet
- ``claimed``: the action log holds the claim; the window is not yet ``rolling_back``
- ``before_step:STEP``: between steps, before STEP's intent is journaled
- ``step_returned:STEP``: STEP's call returned; its outcome is not yet journaled
- ``delivered:CHANNEL``: a notification reached CHANNEL; the outbox does not know yet
"""

from __future__ import annotations

import os
import signal

from watchdog.foundation.model import Event, EventKind, Window
from watchdog.notify.channel import Channel


class CrashPoints:
    """Kills this process at the one point it was told; inert when told none."""

    def __init__(self, at: str | None = None) -> None:
        self._at = at

    @property
    def armed(self) -> bool:
        """True when a point is set (the service logs a loud warning at startup)."""
        return self._at is not None

    def reach(self, point: str) -> None:
        """SIGKILL ourselves if ``point`` is the armed one: no cleanup, like a real crash."""
        if self._at is not None and point == self._at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(self, channels: dict[str, Channel]) -> dict[str, Channel]:
        """Channels that reach ``delivered:NAME`` after each delivery (as-is when inert)."""
        if self._at is None:
            return channels
        return {name: _CrashAfterDelivery(c, self) for name, c in channels.items()}


class _CrashAfterDelivery:
    """A channel that reaches ``delivered:NAME`` once its inner channel delivered."""

    def __init__(self, inner: Channel, points: CrashPoints) -> None:
        self._inner = inner
        self._points = points
        self.name = inner.name

    def wants(self, kind: EventKind) -> bool:
        return self._inner.wants(kind)

    async def deliver(self, event: Event, window: Window) -> None:
        await self._inner.deliver(event, window)
        self._points.reach(f"delivered:{self.name}")
