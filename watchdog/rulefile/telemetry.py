"""Rule models for the sources that read a team's own telemetry services.

``loki`` (LogQL metric queries), ``scrape`` (a target's ``/metrics`` read directly, no
Prometheus server) and ``sentry`` (new issues of the deployed release). They build on
:class:`~watchdog.rulefile.schema.RuleBase`; ``files.py`` adds them to the ``Rule`` union.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.foundation import regex
from watchdog.foundation.durations import Duration
from watchdog.rulefile.schema import RuleBase, _check_query_vars
from watchdog.rulefile.threshold import Threshold, parse_threshold

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"


class LokiRule(RuleBase):
    """A LogQL metric query (``sum(count_over_time({app="api"} |= "x" [1m]))``).

    Like a Prometheus rule: each returned series is judged on its own, ranges are
    clamped to the window's age (no evidence from before the deploy), replay uses
    range queries. An empty answer means no matching lines: with the default
    ``no_data: ok`` that is healthy.
    """

    source: Literal["loki"]
    query: str = Field(min_length=1, max_length=8192)

    @field_validator("query")
    @classmethod
    def _query_vars(cls, value: str) -> str:
        return _check_query_vars(value)


class MetricSelector(BaseModel):
    """Series of one metric family in a scraped ``/metrics`` page, summed.

    ``match`` keeps series whose labels equal the given values; a value written as
    ``"~REGEX"`` is an anchored regular expression (``status: "~5.."``). With
    ``slower_than: 2`` the metric is a histogram and the selector counts its
    observations above that bucket bound (``count - bucket{le="2"}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(pattern=METRIC_NAME)
    match: dict[str, str] = Field(default_factory=dict, max_length=16)
    slower_than: float | None = Field(None, gt=0)

    @field_validator("match")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, wanted in value.items():
            if not re.fullmatch(LABEL_NAME, name):
                raise ValueError(f"match: invalid label name {name!r}")
            if wanted.startswith("~"):
                try:
                    regex.check(wanted[1:])  # RE2, as Prometheus matchers: linear time
                except ValueError as exc:
                    raise ValueError(f"match.{name}: invalid regex: {exc}") from None
        return value


class ScrapeRule(RuleBase):
    """Reads a target's Prometheus ``/metrics`` every interval, no Prometheus server.

    ``value: gauge`` sums the selected series now; ``increase`` is the counter's
    increase since the window opened (resets handled like Prometheus' ``increase``);
    ``ratio`` is ``increase(errors) / increase(total)`` since the window opened. A
    counter series that does not exist yet counts as zero; a ratio over no traffic is
    no data.
    """

    source: Literal["scrape"]
    url: str = Field(pattern=r"^https?://", max_length=2048)
    value: Literal["gauge", "increase", "ratio"] = "ratio"
    metric: MetricSelector | None = None  # gauge / increase
    errors: MetricSelector | None = None  # ratio
    total: MetricSelector | None = None  # ratio
    timeout: Duration = Field(5.0, gt=0, le=60)
    max_bytes: int = Field(8 << 20, ge=1024, le=64 << 20)

    @field_validator("url")
    @classmethod
    def _url_vars(cls, value: str) -> str:
        return _check_query_vars(value)

    @model_validator(mode="after")
    def _shape(self) -> ScrapeRule:
        if self.baseline is not None:
            raise ValueError("scrape reads the target now: 'baseline' is not allowed")
        if self.value == "ratio" and (self.errors is None or self.total is None):
            raise ValueError("value: ratio needs 'errors' and 'total' selectors")
        if self.value != "ratio" and self.metric is None:
            raise ValueError(f"value: {self.value} needs a 'metric' selector")
        return self


class SentryRule(RuleBase):
    """New Sentry issues first seen in the deployed release since the window opened.

    Counted through Sentry's issues API (``firstRelease`` = the deployed version),
    for ``project`` and the window's environment; issues first seen under earlier
    releases are ignored. Default threshold ``> 0``.
    """

    source: Literal["sentry"]
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")
    release: str = "{{ version }}"
    query: str = Field("is:unresolved", max_length=1000)  # extra Sentry search terms
    level: Literal["error", "fatal", "warning", "info", "debug"] | None = None
    threshold: Threshold = Field(default_factory=lambda: parse_threshold("> 0"))

    @field_validator("release")
    @classmethod
    def _release_vars(cls, value: str) -> str:
        return _check_query_vars(value)

    @model_validator(mode="after")
    def _no_baseline(self) -> SentryRule:
        if self.baseline is not None:
            raise ValueError("sentry rules count new issues: 'baseline' is not allowed")
        return self
