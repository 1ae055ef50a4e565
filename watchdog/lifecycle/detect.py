"""Deploy auto-detection: a change of the serving version opens a window by itself.

For every service in ``Settings.detect`` the detector reads the serving version (a
JSON field of an HTTP endpoint, or a Prometheus info metric's label) every
``interval``; APScheduler only calls :meth:`DeployDetector.tick`. When the version
changes from A to B, a window opens for B with ``previous_version`` A.

A deploy CI already registered through the API (the newest window has version B)
is not opened twice. Our own rollback also changes the version (back from B to A).
That flip must not open a window: when the service's newest window is rolling back / rolled back (or
failed to) and B is that window's ``previous_version``, the change is the rollback
landing, and is only remembered.

Only a change the detector itself saw opens a window: the first read of a service
(at start, after a restart) is a baseline. A window registered by CI may name a
version that is not serving yet, so a mismatch with the store is no evidence of a
deploy; the store is only asked, on a change, whether the change is a rollback landing
or a deploy CI already registered. The last version seen is kept in memory; a deploy
that finishes while the watchdog is down is not detected (CI registration covers it).
Every version read also joins the service's history (``admission.KnownVersions``),
against which a registered deploy's ``previous_version`` is checked.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from watchdog.deploys.admission import KnownVersions
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import Overloaded, WatchdogError
from watchdog.foundation.model import Deployment, Window, WindowPhase
from watchdog.lifecycle.windows import WindowService
from watchdog.plumbing.metrics import Metrics
from watchdog.sources.versions import VersionReader, WatchedService
from watchdog.store.base import WindowStore

log = structlog.get_logger("watchdog.detect")

ROLLBACK_PHASES = frozenset(
    {
        WindowPhase.ROLLING_BACK,
        WindowPhase.CONFIRMING,
        WindowPhase.ROLLED_BACK,
        WindowPhase.ROLLBACK_INEFFECTIVE,
        WindowPhase.ROLLBACK_FAILED,
    }
)
ACTOR = "detect"


class DeployDetector:
    """Polls each watched service's version and opens a window when it changes."""

    def __init__(
        self,
        services: Sequence[WatchedService],
        *,
        reader: VersionReader,
        windows: WindowService,
        store: WindowStore,
        clock: Clock,
        metrics: Metrics | None = None,
        known: KnownVersions | None = None,
    ) -> None:
        self._services = tuple(services)
        self._known = known  # every version read joins the service's history
        self._reader = reader
        self._windows = windows
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._seen: dict[str, str] = {}
        self._due: dict[str, float] = {}

    async def tick(self) -> None:
        """Read every service that is due; open windows for those whose version moved."""
        now = self._clock.now()
        for spec in self._services:
            if now < self._due.get(spec.service, 0.0):
                continue
            self._due[spec.service] = now + spec.interval
            try:
                await self.check(spec)
            except Exception:
                # One service's trouble must not stop the others being watched.
                log.exception("deploy detection failed", service=spec.service)

    async def check(self, spec: WatchedService) -> Window | None:
        """Read one service's version; returns the window it opened, if any."""
        try:
            version = await self._reader.read(spec.probe, spec.variables())
        except WatchdogError as exc:
            log.warning("version unreadable", service=spec.service, error=str(exc))
            return None
        if self._known is not None:
            self._known.note(spec.service, spec.environment, version)
        known = self._seen.get(spec.service)
        self._seen[spec.service] = version
        if known is None or version == known:
            return None  # first sight of the service, or nothing changed
        newest = await self._newest(spec)
        if _is_our_rollback(newest, version):
            log.info("rollback landed", service=spec.service, version=version)
            return None
        if newest is not None and newest.deployment.version == version:
            return None  # already registered (CI called the API first)
        try:
            return await self._open(spec, version, known)
        except Overloaded:
            # Refused and logged (max_open_windows); forget the version so a later
            # check opens the window once others have closed.
            self._seen[spec.service] = known
            return None

    async def _newest(self, spec: WatchedService) -> Window | None:
        found = await self._store.list_windows(
            service=spec.service, environment=spec.environment, limit=1
        )
        return found[0] if found else None

    async def _open(self, spec: WatchedService, version: str, previous: str) -> Window:
        deployment = Deployment(
            service=spec.service,
            environment=spec.environment,
            version=version,
            previous_version=previous,
            labels=dict(spec.labels),
            plan=spec.plan,
        )
        window = await self._windows.open_window(
            deployment, window_seconds=spec.window, actor=ACTOR
        )
        if self._metrics is not None:
            self._metrics.windows_detected.labels(spec.service).inc()
        log.debug("deploy detected", service=spec.service, version=version, previous=previous)
        return window


def _is_our_rollback(window: Window | None, version: str) -> bool:
    return (
        window is not None
        and window.phase in ROLLBACK_PHASES
        and window.deployment.previous_version == version
    )
