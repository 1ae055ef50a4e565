"""The Notifier port: how people hear about a window (Slack, webhooks, PagerDuty, logs).

Notifications are best effort *from the caller's point of view*: a slow or broken
notifier must never delay or block a rollback. :class:`FanoutNotifier` is the one the
engine holds; it runs every notifier concurrently, bounds each with a timeout and
swallows (logs) every failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Protocol

import structlog

from watchdog.logs import get_logger
from watchdog.metrics import Metrics
from watchdog.model import Event, Window

log = get_logger(__name__)


class Notifier(Protocol):
    """Tells people about one event of a window."""

    async def notify(self, event: Event, window: Window) -> None:
        """Deliver ``event``; may raise (the fanout catches it)."""
        ...


class NoopNotifier:
    """Drops every event (the default when nothing is configured)."""

    async def notify(self, event: Event, window: Window) -> None:
        """Do nothing."""


class LogNotifier:
    """Writes every event to the log: always on, so the log tells the whole story."""

    def __init__(self, logger: structlog.stdlib.BoundLogger | None = None) -> None:
        self._log = logger if logger is not None else get_logger("watchdog.notify")

    async def notify(self, event: Event, window: Window) -> None:
        """Log the event with the window, service, version, kind and message."""
        deployment = window.deployment
        self._log.info(
            "notification",
            window=window.id,
            service=deployment.service,
            environment=deployment.environment,
            version=deployment.version,
            kind=event.kind.value,
            rule=event.rule,
            message=event.message,
        )


class FanoutNotifier:
    """Sends each event to every notifier concurrently; never raises, never hangs.

    Each notifier gets at most ``timeout`` seconds per event; a notifier that raises or
    times out is logged (by class name) and the others are unaffected. With ``metrics``,
    every delivery is counted by channel (a notifier's ``channel`` attribute, else its
    class name): channels themselves need not count.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier],
        timeout: float = 5.0,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._notifiers = tuple(notifiers)
        self._timeout = timeout
        self._metrics = metrics

    @property
    def notifiers(self) -> tuple[Notifier, ...]:
        """The notifiers events go to."""
        return self._notifiers

    async def notify(self, event: Event, window: Window) -> None:
        """Deliver ``event`` to every notifier; returns within about ``timeout``."""
        await asyncio.gather(*(self._one(n, event, window) for n in self._notifiers))

    async def _one(self, notifier: Notifier, event: Event, window: Window) -> None:
        name = type(notifier).__name__
        ok = False
        try:
            async with asyncio.timeout(self._timeout):
                await notifier.notify(event, window)
            ok = True
        except TimeoutError:
            log.warning(
                "notifier timed out",
                notifier=name,
                timeout=self._timeout,
                window=window.id,
                kind=event.kind.value,
            )
        except Exception:
            log.exception("notifier failed", notifier=name, window=window.id, kind=event.kind.value)
        finally:
            if self._metrics is not None:
                self._metrics.notification(str(getattr(notifier, "channel", name)), ok=ok)
