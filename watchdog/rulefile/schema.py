"""Rule file models: YAML groups of rules, one model per source kind."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.foundation import regex
from watchdog.foundation.durations import Duration
from watchdog.foundation.model import Action
from watchdog.rulefile.scope import Scope
from watchdog.rulefile.template import DEPLOYMENT_VARS, MESSAGE_VARS, placeholders, unknown_vars
from watchdog.rulefile.threshold import Threshold, parse_threshold
from watchdog.rulefile.units import Unit

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


class RuleBase(Scope):
    """Fields every rule has, whatever its source (and ``services``/``match``: which
    deploys it watches, see :mod:`watchdog.rulefile.scope`)."""

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
    # Shadow: judged as usual, but where it would act the window journals
    # `would_roll_back` instead (not `mode:`, which postgres rules use for their value).
    shadow: bool = False
    # What the value measures, for people (the status page, `deploy status`): printed
    # 29.2 % rather than 0.292. None: inferred from the name and query (watchdog/rulefile/units.py).
    unit: Unit | None = None
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
    # --- shared queries (sources/shared.py) ---
    # The label holding the service name in a query answering for every service
    # (`sum by (service) (...)`): one query serves all windows, each keeps its series.
    shared_by: str | None = Field(None, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")
    # The scrape job the query reads: when every target of it is down (`up == 0`), the
    # rule is blind rather than judged on the stale or missing series (sources/blindness.py).
    job: str | None = Field(None, min_length=1, max_length=200, pattern=r'^[^"\\\n]+$')

    @field_validator("query", "job")
    @classmethod
    def _query_vars(cls, value: str | None) -> str | None:
        return value if value is None else _check_query_vars(value)

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


# --- database, cache and log sources (targets are named here, configured in Settings) ---
TARGET_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


def _no_templates(value: str) -> str:
    if placeholders(value):
        raise ValueError("cannot be templated: values never reach SQL or paths as text")
    return value


class _NoLookBack(RuleBase):
    @model_validator(mode="after")
    def _no_baseline(self) -> _NoLookBack:
        if self.baseline is not None:
            raise ValueError(f"{self.source} cannot look back in time: 'baseline' is not allowed")
        return self


class PostgresRule(_NoLookBack):
    """A read-only SQL query on a named target; one number, or rows of labels -> number.

    Text columns become labels, numeric columns values. ``mode`` says how the value is
    read: ``gauge`` as returned; ``delta`` the change of the first value since the start
    point; ``delta_ratio`` the change of the first value over the change of the second
    (e.g. pg_stat_statements total time / calls: the average of the queries run since).
    """

    source: Literal["postgres"]
    target: str = Field(pattern=TARGET_NAME)
    query: str = Field(min_length=1)
    mode: Literal["gauge", "delta", "delta_ratio"] = "gauge"
    since: Literal["window_start", "previous_sample"] = "window_start"
    timeout: Duration = Field(5.0, gt=0)  # the statement timeout
    # The query counts rows that stay after any rollback (FK orphans, NULLs in required
    # columns): confirming a rollback judges only the rows added since it, never the
    # standing count, and the outcome says the rows still need repair.
    standing: bool = False

    @field_validator("query")
    @classmethod
    def _plain_sql(cls, value: str) -> str:
        return _no_templates(value)


class RedisRule(_NoLookBack):
    """``PING`` (value: round trip in seconds) or a numeric ``INFO`` field.

    ``ratio_to`` divides by another INFO field (``used_memory`` / ``maxmemory``).
    """

    source: Literal["redis"]
    target: str = Field(pattern=TARGET_NAME)
    check: Literal["ping", "info"] = "ping"
    field: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,63}$")
    ratio_to: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,63}$")
    timeout: Duration = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _field_for_info(self) -> RedisRule:
        if self.check == "info" and self.field is None:
            raise ValueError("check: info needs 'field' (e.g. used_memory)")
        if self.check == "ping" and (self.field or self.ratio_to):
            raise ValueError("check: ping takes no 'field' or 'ratio_to'")
        return self


class LogRule(_NoLookBack):
    """Counts lines matching ``pattern`` appended to ``path`` since the window started."""

    source: Literal["log"]
    path: str = Field(min_length=1, pattern=r"^/[^{}]*$")  # absolute, never templated
    pattern: str = Field(min_length=1)  # RE2 syntax (watchdog/foundation/regex.py)
    max_bytes: int = Field(1 << 20, ge=1024, le=64 << 20)  # read per evaluation at most
    threshold: Threshold = Field(default_factory=lambda: parse_threshold("> 0"))

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return regex.check(value)


class AlertmanagerRule(RuleBase):
    """Counts firing Alertmanager alerts that belong to the window; default ``> 0``.

    ``alertname`` and ``matchers`` (label equality) and ``match_re`` (anchored regex)
    pick the alerts; ``service_label`` / ``environment_label`` (``null``: any) tie them
    to the deployment. Alerts that started before the deploy count only with
    ``include_preexisting: true``.
    """

    source: Literal["alertmanager"]
    alertname: str | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    service_label: str = Field("service", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    environment_label: str | None = Field("environment", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    include_preexisting: bool = False
    threshold: Threshold = Field(default_factory=lambda: parse_threshold("> 0"))

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                regex.check(pattern)
            except ValueError as exc:
                raise ValueError(f"match_re.{label}: {pattern!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _no_baseline(self) -> AlertmanagerRule:
        if self.baseline is not None:
            raise ValueError("alertmanager rules use include_preexisting, not 'baseline'")
        return self

    @property
    def equal(self) -> dict[str, str]:
        """Label equality matchers, ``alertname`` included."""
        out = dict(self.matchers)
        if self.alertname is not None:
            out["alertname"] = self.alertname
        return out
