"""The API's answers about windows: a window, its rules with their recent points and
judge evidence, its journal (``GET /api/v1/deployments[/{id}]``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field

from watchdog.foundation.model import Event, EventKind, Verdict, Window, WindowPhase, iso
from watchdog.lifecycle.control import RuleView
from watchdog.store.base import RulePoint


class WindowOut(BaseModel):
    """A watch window as the API shows it."""

    id: str
    url: str
    page: str = Field(description="The window's status page (`/deployments/ID`), for people.")
    service: str
    environment: str
    version: str
    previous_version: str | None
    labels: dict[str, str]
    plan: str | None
    phase: WindowPhase
    started_at: str
    ends_at: str
    updated_at: str
    seconds_left: float = Field(ge=0)
    reason: str | None
    shadow: bool = Field(description="Nothing acts on its own: `would_roll_back` is journaled.")
    confirm_for: float = Field(
        ge=0, description="Seconds the restored version is watched after a rollback."
    )
    confirm_until: str | None = Field(
        description="While `confirming`: when the rollback's outcome is judged."
    )

    @classmethod
    def of(cls, window: Window, *, base_url: str, now: float) -> WindowOut:
        """Render a domain window; ``seconds_left`` is 0 once the window is terminal.

        While ``confirming`` it counts down to ``confirm_until``.
        """
        d = window.deployment
        end = window.confirm_until or window.ends_at
        left = 0.0 if window.phase.terminal else max(0.0, end - now)
        return cls(
            id=window.id,
            url=f"{base_url.rstrip('/')}/api/v1/deployments/{window.id}",
            page=f"{base_url.rstrip('/')}/deployments/{window.id}",
            service=d.service,
            environment=d.environment,
            version=d.version,
            previous_version=d.previous_version,
            labels=dict(d.labels),
            plan=d.plan,
            phase=window.phase,
            started_at=_iso(window.started_at),
            ends_at=_iso(window.ends_at),
            updated_at=_iso(window.updated_at),
            seconds_left=round(left, 1),
            reason=window.reason,
            shadow=window.shadow,
            confirm_for=window.confirm_for,
            confirm_until=iso(window.confirm_until),
        )


def _iso(ts: float) -> str:
    return iso(ts) or ""


class WindowListOut(BaseModel):
    """``GET /api/v1/deployments``: windows, newest first."""

    windows: list[WindowOut]


class PointOut(BaseModel):
    """One evaluation of a rule: when, the value judged (null: no data), the verdict."""

    at: str
    value: float | None
    verdict: Verdict

    @classmethod
    def of(cls, point: RulePoint) -> PointOut:
        """Render a :class:`watchdog.store.base.RulePoint`."""
        return cls(at=_iso(point.at), value=point.value, verdict=point.verdict)


class JudgeEvidenceOut(BaseModel):
    """A judge rule's evidence: counts since its first test began, the baseline, the
    limit tested against, and the test's confidence (it fires at ``1 - alpha``)."""

    errors: float = 0.0
    requests: float = 0.0
    proportion: float | None = None
    baseline: float | None = None
    baseline_errors: float | None = None
    baseline_requests: float | None = None
    limit: float | None = None
    alpha: float | None = None
    confidence: float = 0.0
    needed: float | None = None  # requests needed before a doubling would show
    dispersion: float | None = None  # how bursty errors are (counts weigh 1/dispersion)
    tests: int = 0


class RuleOut(BaseModel):
    """One rule of one window: its latest verdict and values (NaN/Inf render as null).

    ``samples`` are the rule's most recent evaluations, oldest first (at most 240).
    """

    name: str
    group: str
    source: str
    action: str
    severity: str
    threshold: str
    for_seconds: float
    interval_seconds: float
    verdict: Verdict
    last_value: float | None
    worst_value: float | None
    pending_since: str | None
    last_eval_at: str | None
    baseline: float | None
    reason: str | None
    threshold_value: float | None = None
    evidence: JudgeEvidenceOut | None = None  # judge rules only
    shadow: bool = False
    unit: str = "count"  # ratio (print x100 as %), percent, seconds, milliseconds, bytes, count
    runbook_url: str | None = None
    # coverage: evaluations that judged the version (had data and a verdict), of all
    # evaluations, and the causes of the others ("blind", "no data", ...) with counts
    judged: int = 0
    evaluations: int = 0
    gaps: dict[str, int] | None = None
    samples: list[PointOut] = Field(default_factory=list)

    @classmethod
    def of(cls, rule: RuleView, points: Sequence[RulePoint] = ()) -> RuleOut:
        """Render a :class:`watchdog.lifecycle.control.RuleView` and its recent points."""
        fields = asdict(rule)
        fields["pending_since"] = iso(rule.pending_since)
        fields["last_eval_at"] = iso(rule.last_eval_at)
        fields["samples"] = [PointOut.of(p) for p in points]
        return cls(**fields)


class EventOut(BaseModel):
    """One entry of a window's journal."""

    seq: int | None
    at: str
    kind: EventKind
    rule: str | None
    message: str
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventOut:
        """Render a :class:`watchdog.foundation.model.Event`."""
        return cls.model_validate(event.as_dict())


class WindowDetailOut(BaseModel):
    """``GET /api/v1/deployments/{id}``: the window, its rules and its journal."""

    window: WindowOut
    rules: list[RuleOut]
    events: list[EventOut]
