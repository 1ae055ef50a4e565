"""The ``judge`` rule kind: error proportions weighed by a sequential test.

A judge rule names counters, not a ratio: ``errors`` (or ``good``, for latency goals
over a histogram bucket) and ``total``. The loader turns them into one PromQL query
that returns every counter series tagged with its role (``watchdog_judge``), so the
live loop, baselines and ``watchdog replay`` all run an ordinary Prometheus query and
:mod:`watchdog.judge.evaluate` does the counting. See docs/rules.md, "Judge rules".
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchdog.foundation.durations import Duration
from watchdog.rulefile.schema import Baseline, PrometheusRule, RuleBase, _check_query_vars
from watchdog.rulefile.threshold import parse_threshold

ROLE = "watchdog_judge"  # the label the judge's query adds to tell counters apart
_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")
_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TESTS = 24
MAX_SELECTOR = 1000  # characters
MAX_BY = 4  # labels an endpoint is told apart by
BLOCK = "5m"  # the baseline's burstiness is measured on blocks of this length
BLOCK_SECONDS = 300.0
MOMENTS = ("m_e", "m_n", "m_e2n", "m_n2", "m_blocks")  # the baseline's block moments


def _fraction(value: Any) -> Any:
    """``"0.5%"`` → 0.005; numbers pass through."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"not a percentage: {value!r}") from None
    return value


class Before(BaseModel):
    """The baseline period: ``range`` of traffic ending ``offset`` before the deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset: Duration = 300.0  # skip the deploy's own rollout
    range: Duration = Field(3600.0, gt=0)
    # how bursty errors were is measured over longer: a quiet hour says little about
    # retry storms that come a few times a day
    bursts: Duration = Field(6 * 3600.0, gt=0)


class JudgeRule(RuleBase):
    """Fires when a sequential test shows the error proportion above its limit.

    limit = ``min(max(factor * baseline, baseline + margin, floor), ceiling)``, the
    baseline being its upper confidence bound; with ``against: none`` the limit is
    ``floor`` alone. ``against: auto`` weighs the new version against the previous one
    while both serve (a canary), else against the hour before. ``by`` judges each
    endpoint carrying at least ``min_share`` of the traffic apart too.
    """

    source: Literal["judge"]
    errors: str | None = Field(None, max_length=MAX_SELECTOR)  # counter of failed requests
    good: str | None = Field(None, max_length=MAX_SELECTOR)  # or of good ones (le="2.0")
    total: str = Field(min_length=1, max_length=MAX_SELECTOR)
    against: Literal["before", "previous_version", "auto", "none"] = "before"
    before: Before = Field(default_factory=Before)
    version_label: str = Field("version", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    factor: float = Field(2.0, ge=1.0, le=1000.0)
    margin: float = Field(0.005, ge=0.0, lt=1.0)
    floor: float = Field(0.0, ge=0.0, lt=1.0)
    ceiling: float | None = Field(None, gt=0.0, lt=1.0)  # a proportion shown above it fires
    by: tuple[str, ...] = Field((), max_length=MAX_BY)  # endpoint labels, e.g. [handler]
    min_share: float = Field(0.02, gt=0.0, le=1.0)  # an endpoint's share to be judged apart
    alpha: float = Field(0.001, gt=0.0, le=0.1)  # the false-rollback rate
    warmup: Duration = 60.0  # counting starts this long after the window opens
    restart_every: Duration = Field(300.0, gt=0)  # a fresh test every so often …
    tests: int = Field(6, ge=1, le=MAX_TESTS)  # … this many in all (each at alpha/tests)

    _percent = field_validator("margin", "floor", "ceiling", "alpha", "min_share", mode="before")(
        _fraction
    )

    @field_validator("by", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else value
        for label in values or ():
            if not isinstance(label, str) or not _LABEL.match(label):
                raise ValueError(f"by: {label!r} is not a label name")
        return values

    @model_validator(mode="before")
    @classmethod
    def _no_threshold(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("threshold", "baseline", "for"):
                if key in data:
                    raise ValueError(
                        f"judge rules take no {key!r}: the test decides "
                        "(set factor, margin, floor, alpha; see docs/rules.md)"
                    )
            data = {**data, "threshold": "> 0"}  # unused; the judge reports its own limit
        return data

    @field_validator("errors", "good", "total")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        _check_query_vars(value)
        if not _SELECTOR.match(_PLACEHOLDER.sub("x", value)):
            raise ValueError(
                f'{value[:80]!r} is not a counter selector: write metric{{label="v"}} '
                "(the judge takes increases itself; no rate(), sum() or operators)"
            )
        return value

    @model_validator(mode="after")
    def _shape(self) -> JudgeRule:
        if (self.errors is None) == (self.good is None):
            raise ValueError("a judge rule needs exactly one of 'errors' or 'good'")
        if self.against == "none" and self.floor <= 0:
            raise ValueError("against: none needs a 'floor' (the highest acceptable proportion)")
        if self.ceiling is not None and self.ceiling < self.floor:
            raise ValueError("ceiling must not be below floor")
        if self.against in ("before", "auto"):
            offset = self.before.offset
            object.__setattr__(
                self, "baseline", Baseline(query=self._before_query(), offset=offset)
            )
        return self

    @property
    def bad_role(self) -> str:
        """``errors`` or ``good``: which counter the first selector is."""
        return "errors" if self.errors is not None else "good"

    @property
    def query(self) -> str:
        """The live query: every counter series, tagged by role (and version)."""
        first = self.errors if self.errors is not None else self.good
        assert first is not None
        parts = [(self.bad_role, first), ("total", self.total)]
        then = [(f"base_{r}", _with(s, self.version_label, "previous_version")) for r, s in parts]
        if self.against == "previous_version":
            parts = [(r, _with(s, self.version_label, "version")) for r, s in parts] + then
        elif self.against == "auto":  # every series, and the previous version's apart
            parts = parts + then
        return " or ".join(_tag(sel, role) for role, sel in parts)

    @property
    def shared_by(self) -> None:
        """Judge queries are per window (see sources/shared.py)."""
        return None

    def baseline_probe(self) -> PrometheusRule:
        """A plain Prometheus rule running the baseline query (captured at open)."""
        assert self.baseline is not None and self.baseline.query is not None
        return PrometheusRule(
            name=self.name,
            source="prometheus",
            query=self.baseline.query,
            threshold=parse_threshold("> 0"),
        )

    def _before_query(self) -> str:
        """The counts of the period before (per endpoint with ``by``), and the moments of
        its five-minute blocks: how much more the proportion wandered than chance says."""
        first = self.errors if self.errors is not None else self.good
        assert first is not None
        window = f"{self.before.range:g}s"
        by = f" by ({', '.join(self.by)})" if self.by else ""
        parts = [(self.bad_role, first), ("total", self.total)]
        counts = [_tag(f"sum{by}(increase({s}[{window}]))", r) for r, s in parts]
        total = f"sum(increase({self.total}[{BLOCK}]))"
        if self.errors is not None:
            bad = f"(sum(increase({self.errors}[{BLOCK}])) or vector(0))"
        else:
            bad = f"({total} - (sum(increase({self.good}[{BLOCK}])) or vector(0)))"
        served = f"({total} > 0)"
        sub = f"[{self.before.bursts:g}s:{BLOCK}])"
        moments = {
            "m_e": f"sum_over_time(({bad} and {served}){sub}",
            "m_n": f"sum_over_time({served}{sub}",
            "m_e2n": f"sum_over_time(({bad} ^ 2 / {served}){sub}",
            "m_n2": f"sum_over_time(({served} ^ 2){sub}",
            "m_blocks": f"count_over_time({served}{sub}",
            "m_max": f"max_over_time(({bad} / {served}){sub}",  # the worst block before
        }
        return " or ".join(counts + [_tag(e, r) for r, e in moments.items()])


def _tag(expr: str, role: str) -> str:
    return f'label_replace({expr}, "{ROLE}", "{role}", "", "")'


def _with(selector: str, label: str, var: str) -> str:
    """Add ``label="{{ var }}"`` to a selector's matchers (never matching an empty value:
    with no previous version known, the baseline is absent rather than unlabelled series).
    """
    matcher = f'{label}!="",{label}="{{{{ {var} }}}}"'
    if selector.endswith("}"):
        inner = selector[selector.index("{") + 1 : -1].strip().rstrip(",")
        name = selector[: selector.index("{")]
        return f"{name}{{ {inner + ',' if inner else ''}{matcher}}}"  # "{ {{": not "{{{"
    return f"{selector}{{{matcher}}}"
