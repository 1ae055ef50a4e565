"""The HTTP API's wire format: request models and the error envelope; the window
response models live in ``window_schemas.py``.

Every value a deployment carries may end up inside a PromQL query or a URL, so each is
checked with :func:`watchdog.rulefile.template.check_value` here, at the edge; the JSON
Schema of each field says the same thing, so the OpenAPI document is honest about it.
"""

from __future__ import annotations

import re
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

from watchdog.foundation.durations import Duration
from watchdog.foundation.model import WindowPhase
from watchdog.rulefile.template import SAFE_LABEL_NAME, SAFE_VALUE, check_value

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
