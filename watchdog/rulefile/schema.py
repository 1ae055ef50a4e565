"""Rule file models: YAML groups of rules, one model per source kind."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.durations import Duration
from watchdog.model import Action
from watchdog.rulefile.template import DEPLOYMENT_VARS, MESSAGE_VARS, unknown_vars
from watchdog.rulefile.threshold import Threshold, parse_threshold

RULE_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$"


class Policy(StrEnum):
    """How a rule reads a sample with no data, or a failed sample."""

    OK = "ok"  # treat it as healthy
    BREACH = "breach"  # treat it as the condition holding (the failure is the signal)
    INCONCLUSIVE = "inconclusive"  # neither: never fires, never reads as healthy


class Severity(StrEnum):
    """How loudly to tell people."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Baseline(BaseModel):
    """A value captured once at window start from before the deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str | None = None  # default: the rule's own query with `offset` applied
    offset: Duration = 3600.0  # how far before the deploy to look
    fallback: float | None = None  # used when the baseline query has no data


class RuleBase(BaseModel):
    """Fields every rule has, whatever its source."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=RULE_NAME)
    source: str
    threshold: Threshold
    for_: Duration = Field(0.0, alias="for")
    interval: Duration | None = None  # default: the group's interval
    no_data: Policy = Policy.INCONCLUSIVE
    on_error: Policy = Policy.INCONCLUSIVE
    action: Action = Action.NOTIFY
    severity: Severity = Severity.WARNING
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    baseline: Baseline | None = None
    grace: Duration = 0.0  # wait this long before an automatic rollback; a Hold vetoes it
    # Filled in by the loader: the group the rule belongs to and where it was written.
    group: str = ""
    origin: str = ""

    @field_validator("threshold", mode="before")
    @classmethod
    def _parse_threshold(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"threshold needs an operator, e.g. '> {value}'")
        return parse_threshold(value) if isinstance(value, str) else value

    @field_validator("summary")
    @classmethod
    def _summary_vars(cls, value: str) -> str:
        bad = unknown_vars(value, DEPLOYMENT_VARS | MESSAGE_VARS)
        if bad:
            raise ValueError(f"unknown template variable {bad[0]!r} in summary")
        return value

    @model_validator(mode="after")
    def _baseline_needed(self) -> RuleBase:
        if self.threshold.uses_baseline and self.baseline is None:
            raise ValueError("threshold refers to baseline but the rule has no 'baseline:'")
        return self

    @property
    def effective_interval(self) -> float:
        """The rule's interval (the loader fills the group's in)."""
        return self.interval if self.interval is not None else 15.0

    def templates(self) -> dict[str, str]:
        """Templated fields of this rule, by field name (checked by the loader)."""
        return {}


def _check_query_vars(value: str) -> str:
    bad = unknown_vars(value, DEPLOYMENT_VARS)
    if bad:
        raise ValueError(f"unknown template variable {bad[0]!r}")
    return value


class PrometheusRule(RuleBase):
    """An instant PromQL query; each returned series is judged on its own."""

    source: Literal["prometheus"]
    query: str = Field(min_length=1)

    @field_validator("query")
    @classmethod
    def _query_vars(cls, value: str) -> str:
        return _check_query_vars(value)

    @model_validator(mode="after")
    def _baseline_query_vars(self) -> PrometheusRule:
        if self.baseline is not None and self.baseline.query is not None:
            _check_query_vars(self.baseline.query)
        return self


class HttpRule(RuleBase):
    """An HTTP probe. Value 1 when the probe fails (wrong status, refused, timeout,
    JSON field mismatch), 0 when it passes; the default threshold is ``> 0``."""

    source: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    expect_status: str = Field("2xx", pattern=r"^([1-5]xx|[1-5]\d\d)(,([1-5]xx|[1-5]\d\d))*$")
    timeout: Duration = 5.0
    json_field: str | None = None  # dotted path into the JSON body, e.g. "checks.db"
    json_equals: str | int | float | bool | None = None
    threshold: Threshold = Field(default_factory=lambda: parse_threshold("> 0"))

    @field_validator("url")
    @classmethod
    def _url_vars(cls, value: str) -> str:
        return _check_query_vars(value)

    @model_validator(mode="after")
    def _no_baseline(self) -> HttpRule:
        if self.baseline is not None:
            raise ValueError("http probes cannot look back in time: 'baseline' is not allowed")
        return self


Rule = Annotated[PrometheusRule | HttpRule, Field(discriminator="source")]
SOURCE_KINDS = ("prometheus", "http")


class Group(BaseModel):
    """A named set of rules sharing an evaluation interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RULE_NAME)
    interval: Duration = 15.0
    rules: list[Rule] = Field(min_length=1)


class RuleFile(BaseModel):
    """The top level of a rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[Group] = Field(min_length=1)
