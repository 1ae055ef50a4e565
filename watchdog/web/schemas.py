"""The HTTP API's wire format: request and response models, and the error envelope.

Every value a deployment carries may end up inside a PromQL query or a URL, so each is
checked with :func:`watchdog.rulefile.template.check_value` here, at the edge; the JSON
Schema of each field says the same thing, so the OpenAPI document is honest about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)

from watchdog.durations import Duration
from watchdog.model import Event, EventKind, Verdict, Window, WindowPhase, iso
from watchdog.rulefile.template import SAFE_LABEL_NAME, SAFE_VALUE, check_value
from watchdog.store.base import RulePoint
from watchdog.web.control import RuleView

MAX_LABELS = 32
MAX_WINDOW_SECONDS = 7 * 86400.0
MIN_WINDOW_SECONDS = 1.0
NO_CONTROL_CHARS = r"^[^\x00-\x08\x0B-\x1F\x7F]*$"
# Documented string forms are a subset of what parse_duration takes, every one within
# the bounds, so the schema never promises what the server then refuses.
DURATION_PATTERN = r"^([1-9]\d{0,4}s|[1-9]\d{0,3}m|[1-9]\d?h([1-5]?\dm)?|[1-7]d)$"


def ecma_pattern(pattern: re.Pattern[str]) -> str:
    """A Python regex, meant for ``fullmatch``, as an anchored JSON Schema (ECMA) pattern."""
    core = pattern.pattern.removeprefix("^").removesuffix("\\Z").removesuffix("$")
    return f"^{core}$"


# The pattern already bounds the length to 128 (a maxLength beside it confuses generators).
SAFE_SCHEMA: dict[str, Any] = {"type": "string", "pattern": ecma_pattern(SAFE_VALUE)}
LABEL_NAME_PATTERN = ecma_pattern(SAFE_LABEL_NAME)


def _safe(value: str, info: ValidationInfo) -> str:
    check_value(info.field_name or "value", value)
    if not SAFE_VALUE.fullmatch(value):  # in case check_value ever matches more loosely
        raise ValueError(f"{info.field_name or 'value'} is not a safe value")
    return value


def _label_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not SAFE_LABEL_NAME.fullmatch(name):
            raise ValueError(
                f"label name {name[:64]!r} is not allowed: use letters, digits and _ "
                "(at most 64 characters, not starting with a digit)"
            )
    return value


SafeStr = Annotated[str, Field(max_length=128), AfterValidator(_safe), WithJsonSchema(SAFE_SCHEMA)]
"""A string that may be substituted into a query: letters, digits, ``. _ : / @ + = -``."""

Labels = Annotated[
    dict[str, SafeStr],
    Field(max_length=MAX_LABELS),
    AfterValidator(_label_names),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_LABELS,
            "propertyNames": {"pattern": LABEL_NAME_PATTERN},
            "additionalProperties": SAFE_SCHEMA,
        }
    ),
]

WindowLength = Annotated[
    Duration,
    Field(ge=MIN_WINDOW_SECONDS, le=MAX_WINDOW_SECONDS),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": MIN_WINDOW_SECONDS, "maximum": MAX_WINDOW_SECONDS},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": "Window length between 1s and 7d: seconds, or a duration such "
            "as 45s, 30m, 1h30m, 2d (other Prometheus-style spellings are accepted too); "
            "the service's default when absent.",
        }
    ),
]
"""A window length: ``1800``, ``"30m"``, ``"1h30m"`` (1 s to 7 days)."""

MAX_CONFIRM_SECONDS = 86400.0
ConfirmLength = Annotated[
    Duration,
    Field(ge=0, le=MAX_CONFIRM_SECONDS),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_CONFIRM_SECONDS},
                {"type": "string", "pattern": r"^([1-9]\d{0,4}s|[1-9]\d{0,3}m|[1-9]h)$"},
            ],
            "description": "How long to watch the restored version after a rollback "
            "(0 to 1d; 0: no confirmation); the plan's or the service's default when absent.",
        }
    ),
]
"""A confirmation time after a rollback: ``300``, ``"5m"`` (0 s to 1 day)."""

FreeText = Annotated[str, Field(max_length=500, pattern=NO_CONTROL_CHARS)]


class DeploymentIn(BaseModel):
    """``POST /api/v1/deployments``: a deploy happened; open its watch window."""

    model_config = ConfigDict(extra="forbid")

    service: SafeStr
    environment: SafeStr = "production"
    version: SafeStr
    previous_version: SafeStr | None = None
    labels: Labels = Field(default_factory=dict)
    window: WindowLength | None = None
    plan: SafeStr | None = None
    shadow: bool = Field(
        False,
        description="Shadow mode: rules evaluate, nothing acts on its own; the journal "
        "says `would_roll_back` where a rollback would have run.",
    )
    confirm_for: ConfirmLength | None = None
    # Register a previous_version the watchdog never saw running (journaled).
    force: bool = False


# One line: a note sits inside a journal line beside the actor.
Note = Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1F\x7F]*$")]


class ActionIn(BaseModel):
    """Body of hold / resume / rollback / abort (optional: an empty body is fine).

    The journal's actor is always the API identity ``api``; ``note`` (or its older
    spelling ``actor``) is free text shown beside it, e.g. ``api (alice)``: it can
    never claim a Slack identity or any other."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None
    actor: Note | None = Field(None, description="Older spelling of note.")
    reason: FreeText | None = None

    def journal_actor(self, identity: str) -> str:
        """``identity``, with the caller's note beside it."""
        note = self.note or self.actor
        return f"{identity} ({note})" if note else identity


class ListQuery(BaseModel):
    """Query parameters of ``GET /api/v1/deployments``."""

    model_config = ConfigDict(extra="forbid")

    service: SafeStr | None = None
    environment: SafeStr | None = None
    phase: list[WindowPhase] | None = None
    limit: int = Field(100, ge=1, le=1000)


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
        """Render a :class:`watchdog.web.control.RuleView` and its recent points."""
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
        """Render a :class:`watchdog.model.Event`."""
        return cls.model_validate(event.as_dict())


class WindowDetailOut(BaseModel):
    """``GET /api/v1/deployments/{id}``: the window, its rules and its journal."""

    window: WindowOut
    rules: list[RuleOut]
    events: list[EventOut]


class StatusOut(BaseModel):
    """Body of ``/healthz`` and ``/readyz``."""

    status: str


class ErrorDetail(BaseModel):
    """One validation problem."""

    field: str | None = None
    message: str
    type: str


class ErrorBody(BaseModel):
    """What went wrong; ``field`` names the offending input when there is one."""

    status: int
    message: str
    field: str | None = None
    details: list[ErrorDetail] | None = None


class ErrorOut(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorBody


class ApiError(Exception):
    """Raised by handlers; the error middleware renders it as :class:`ErrorOut`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.body = ErrorBody(status=status, message=message, field=field, details=details)
        self.headers = headers or {}

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.body.status

    @classmethod
    def from_validation(cls, exc: ValidationError) -> ApiError:
        """A 422 naming every failing field (input values are never echoed)."""
        details = [
            ErrorDetail(
                field=_field(e["loc"]),
                message=e["msg"].removeprefix("Value error, ")[:300],
                type=e["type"],
            )
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        first = details[0]
        where = f"{first.field}: " if first.field else ""
        return cls(422, f"{where}{first.message}", field=first.field, details=details)


def _field(loc: tuple[int | str, ...]) -> str | None:
    parts = [str(p) for p in loc if isinstance(p, str) and p != "[key]"]
    return ".".join(parts) or None
