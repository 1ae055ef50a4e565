"""Late errors caught at the door: what a new deployment may name.

An unknown plan name is refused with the known ones (it used to fail only when a
rollback was needed). For a service in ``Settings.detect`` the watchdog knows its
history: every version the deploy detector read as serving (kept in memory, the newest
:data:`MEMORY` per service) and every version a window of that service was opened for
(in the store, so the history survives a restart). A service detection does not track
has the store's record alone: the versions its windows were opened for, and the ones
they named as running before (issue 25: the check used to skip them). A deployment
naming a ``previous_version`` outside that history would roll back to something that
never ran here (a typo, or a version the rollback plan cannot reach): it is refused
unless the caller says ``force``, and journaled either way (a refusal on the service's
newest window, a forced one on the new window's ``window_opened``). With no record at
all (a service's first deploy) it is accepted, and ``window_opened`` says it could not
be checked.

A deployment that omits ``previous_version`` gets the version the watchdog last saw
running (:meth:`Admission.previous`): the deploy detector's newest read of another
version, else what the service's newest earlier window left running (its version, or
its ``previous_version`` when it was rolled back). When nothing is known and the plan
that would run refers to ``{{ previous_version }}`` (a templated image or ``verify``
step), the deploy is refused (422) saying what to pass: it used to fail only at the
rollback, with a message about the characters allowed in an empty value.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from watchdog.actions.spec import Plan
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import Refused
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.admission")

# A window in these phases left its previous_version running.
ROLLED_BACK = frozenset(
    {WindowPhase.ROLLING_BACK, WindowPhase.CONFIRMING, WindowPhase.ROLLED_BACK,
     WindowPhase.ROLLBACK_INEFFECTIVE}
)  # fmt: skip
MEMORY = 64  # versions remembered per service from the detector's reads
WINDOWS_READ = 200  # the service's newest windows consulted in the store


class WindowLister(Protocol):
    """The one store query the history needs."""

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first, filtered."""
        ...


class KnownVersions:
    """The versions seen running, per tracked (service, environment)."""

    def __init__(self, tracked: Iterable[tuple[str, str]]) -> None:
        self._seen: dict[tuple[str, str], dict[str, None]] = {key: {} for key in tracked}

    def tracks(self, service: str, environment: str) -> bool:
        """Whether the watchdog follows this service's versions."""
        return (service, environment) in self._seen

    def note(self, service: str, environment: str, version: str) -> None:
        """The detector read ``version`` serving (bounded, newest kept)."""
        seen = self._seen.setdefault((service, environment), {})
        seen.pop(version, None)
        seen[version] = None
        while len(seen) > MEMORY:
            del seen[next(iter(seen))]

    def last_running(self, service: str, environment: str, other_than: str) -> str | None:
        """The newest version the detector read serving, other than ``other_than``."""
        read = self._seen.get((service, environment)) or {}
        return next((v for v in reversed(read) if v != other_than), None)

    def detected(self, service: str, environment: str) -> frozenset[str]:
        """Every version the detector read serving (none for a service not tracked)."""
        return frozenset(self._seen.get((service, environment)) or ())


@dataclass(frozen=True)
class Unchecked:
    """What the new window's ``window_opened`` adds about its ``previous_version``."""

    text: str  # appended to the message
    data: dict[str, bool]  # merged into the event's data


class Admission:
    """The checks a deployment passes before its window opens."""

    def __init__(
        self,
        plans: Mapping[str, Plan],
        known: KnownVersions | None,
        store: WindowLister,
        journal: Journal,
        clock: Clock,
    ) -> None:
        self._plans = plans
        self._known = known
        self._store = store
        self._journal = journal
        self._clock = clock

    async def check(self, d: Deployment, *, actor: str, force: bool) -> Unchecked | None:
        """Raise :class:`Refused`, or return what the window's journal should add
        (a forced unseen ``previous_version``, or one nothing on record could check)."""
        self._check_plan(d.plan)
        return await self._unseen_previous(d, actor, force)

    async def previous(self, d: Deployment) -> tuple[Deployment, str | None]:
        """``d`` with its ``previous_version`` filled in from what the watchdog saw
        running, and where it came from (None: given, or nothing known).

        :class:`Refused` when nothing is known and ``d``'s plan needs it."""
        if d.previous_version is not None:
            return d, None
        found = (
            self._known.last_running(d.service, d.environment, d.version) if self._known else None
        )
        source = "the version the deploy detector last read serving" if found else None
        if found is None:
            found, source = await self._from_windows(d)
        if found is not None:
            return replace(d, previous_version=found), source
        plan = self._plans.get(d.plan or "")
        if plan is not None and "previous_version" in plan.model_dump_json():
            raise Refused(
                f"previous_version is needed: plan {d.plan!r} rolls back to "
                "{{ previous_version }}, and the watchdog has not seen "
                f"{d.service} running in {d.environment}; pass the version running before "
                "this deploy (--previous-version, or previous_version in the API)",
                field="previous_version",
            )
        return d, None

    async def _from_windows(self, d: Deployment) -> tuple[str | None, str | None]:
        """What the service's newest earlier window left running."""
        windows = await self._store.list_windows(
            service=d.service, environment=d.environment, limit=WINDOWS_READ
        )
        for w in windows:
            running = w.deployment.version
            if w.phase in ROLLED_BACK and w.deployment.previous_version:
                running = w.deployment.previous_version
            if running != d.version:
                return running, f"what window {w.id} ({w.deployment.version}) left running"
        return None, None

    def _check_plan(self, plan: str | None) -> None:
        if plan is None or plan in self._plans:
            return
        known = ", ".join(sorted(self._plans)) or "none are configured"
        raise Refused(f"unknown plan {plan!r}; known plans: {known}", field="plan")

    async def history(self, d: Deployment) -> frozenset[str]:
        """The versions on record for ``d``'s service: read serving by the detector, its
        windows' versions, and the versions those windows named as running before."""
        windows = await self._store.list_windows(
            service=d.service, environment=d.environment, limit=WINDOWS_READ
        )
        named = {w.deployment.previous_version or w.deployment.version for w in windows}
        detected = self._known.detected(d.service, d.environment) if self._known else set()
        return frozenset({*detected, *(w.deployment.version for w in windows), *named})

    async def _unseen_previous(self, d: Deployment, actor: str, force: bool) -> Unchecked | None:
        if d.previous_version is None:
            return None
        seen = await self.history(d)
        if not seen:
            return Unchecked(
                f"; previous_version {d.previous_version} not checked: no earlier deployment "
                f"of {d.service} in {d.environment} is on record",
                {"previous_version_unchecked": True},
            )
        if d.previous_version in seen:
            return None
        shown = ", ".join(sorted(seen)[:10]) + (", …" if len(seen) > 10 else "")
        problem = (
            f"previous_version {d.previous_version!r} was never seen running for "
            f"{d.service} in {d.environment} (seen: {shown})"
        )
        if force:
            text = f"; {problem}: registered anyway ({actor} said force)"
            return Unchecked(text, {"previous_version_unseen": True, "forced": True})
        await self._journal_refusal(d, actor, problem)
        raise Refused(f"{problem}; pass force to register it anyway", field="previous_version")

    async def _journal_refusal(self, d: Deployment, actor: str, problem: str) -> None:
        # The refused deploy has no window: its service's newest window tells the story.
        log.warning("deploy refused", service=d.service, version=d.version, why=problem)
        newest = await self._store.list_windows(
            service=d.service, environment=d.environment, limit=1
        )
        if newest:
            await self._journal.record(
                newest[0],
                EventKind.DEPLOY_REFUSED,
                f"{actor}: deploy of {d.version} refused: {problem}",
                at=self._clock.now(),
                data={"actor": actor, "version": d.version, "previous_version": d.previous_version},
                notify=False,
            )


PENDING_KINDS = frozenset({EventKind.ROLLBACK_SCHEDULED, EventKind.APPROVAL_NEEDED})
SETTLING_KINDS = frozenset(
    {EventKind.ROLLBACK_STARTED, EventKind.ACTION_SUPPRESSED, EventKind.WINDOW_SUPERSEDED}
)


class EventLister(WindowLister, Protocol):
    """What the pending-rollback check reads."""

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        """A window's journal in order."""
        ...


async def pending_rollback(store: EventLister, deployment: Deployment) -> Window | None:
    """The service's open window whose rollback is pending (announced in its grace
    period, or awaiting approval), if any. A shadow deployment superseding it would
    disarm that rollback: the API refuses unless ``force`` (issue 25)."""
    for window in await store.list_windows(
        service=deployment.service,
        environment=deployment.environment,
        phases=(WindowPhase.WATCHING, WindowPhase.AWAITING_APPROVAL),
    ):
        if window.phase is WindowPhase.AWAITING_APPROVAL:
            return window
        if window.phase is not WindowPhase.WATCHING:
            continue
        kinds = [e.kind for e in await store.list_events(window.id)]
        pending = [i for i, k in enumerate(kinds) if k in PENDING_KINDS]
        settled = [i for i, k in enumerate(kinds) if k in SETTLING_KINDS]
        if pending and (not settled or settled[-1] < pending[-1]):
            return window
    return None
