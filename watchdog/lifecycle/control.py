"""The port the HTTP API, the status page and Slack drive: what people can ask of windows.

:class:`watchdog.lifecycle.windows.WindowService` implements it; tests use an in-memory fake.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchdog.foundation.model import Deployment, Event, Verdict, Window, WindowPhase
from watchdog.store.base import RulePoint


@dataclass(frozen=True)
class RuleView:
    """One rule of one window as people see it."""

    name: str
    group: str
    source: str
    action: str
    severity: str
    threshold: str  # with the baseline filled in when the rule has one
    for_seconds: float
    interval_seconds: float
    verdict: Verdict
    last_value: float | None
    worst_value: float | None
    pending_since: float | None
    last_eval_at: float | None
    baseline: float | None
    reason: str | None
    threshold_value: float | None = None  # the first clause's bound, drawn on graphs
    evidence: Mapping[str, Any] | None = None  # a judge rule's counts and confidence
    shadow: bool = False  # the rule never acts: it journals what it would have done
    unit: str = "count"  # what the values measure (watchdog/rulefile/units.py): ratio, seconds, …
    runbook_url: str | None = None  # the rule's `runbook_url` label: what to read when it fires
    # Coverage (watchdog/evaluation/coverage.py): evaluations that judged the version, of all
    # evaluations, and why the others did not (cause -> count)
    judged: int = 0
    evaluations: int = 0
    gaps: Mapping[str, int] | None = None


@dataclass(frozen=True)
class WindowDetail:
    """A window with its rules, journal and each rule's recent values."""

    window: Window
    rules: list[RuleView]
    events: list[Event]
    points: Mapping[str, Sequence[RulePoint]] = field(default_factory=dict)


class Controller(Protocol):
    """What the API (and through it the CLI and Slack) can do.

    Raises ``watchdog.foundation.errors.NotFound`` for an unknown id and ``Conflict`` when the
    window's phase does not allow the request (e.g. rollback of a passed window).
    """

    async def open_window(
        self,
        deployment: Deployment,
        *,
        window_seconds: float | None,
        actor: str,
        shadow: bool = False,
        confirm_for: float | None = None,
        force: bool = False,
    ) -> Window:
        """Open a watch window for a deployment (superseding the service's open one).

        ``shadow``: nothing acts on its own; ``confirm_for``: how long a rollback's
        recovery is watched (None: the plan's or the service's default). Raises
        ``watchdog.foundation.errors.Refused`` for an unknown plan, and for a ``previous_version``
        never seen running for a tracked service unless ``force``.
        """
        ...

    async def detail(self, window_id: str) -> WindowDetail:
        """A window with its rules' state and its journal."""
        ...

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first."""
        ...

    async def hold(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Veto automatic rollback; rules keep running."""
        ...

    async def resume(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Lift a hold."""
        ...

    async def rollback(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Roll back now (manual authority); exactly once like any rollback."""
        ...

    async def approve(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Allow the rollback that waits for an approver (journaled ``approved``)."""
        ...

    async def abort(self, window_id: str, *, actor: str, reason: str | None) -> Window:
        """Close the window without rolling back."""
        ...
