"""The domain nouns: deployments, windows and their phases, samples, verdicts, events.

Times are float seconds since the Unix epoch (UTC) everywhere inside the service; the
edges (API, CLI, logs) render them as ISO 8601.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _quoted  # json.dumps(str), no setup
from typing import Any

import orjson

from watchdog.foundation.events import ActionRecord, ActionStatus, Event, EventKind, iso
from watchdog.foundation.judgestate import JudgeState

# The journal's and the action log's records live in watchdog/foundation/events.py; they are
# named here too, beside the other domain nouns, as they always were.
__all__ = [
    "Action", "ActionRecord", "ActionStatus", "Deployment", "Event", "EventKind", "RuleState",
    "Sample", "SampleKind", "Series", "Verdict", "Window", "WindowPhase", "iso", "new_id",
    "series_key",
]  # fmt: skip


def new_id() -> str:
    """A short random identifier for windows (48 bits of entropy, URL-safe)."""
    return secrets.token_hex(6)


class WindowPhase(StrEnum):
    """Where a deployment's watch window stands."""

    WATCHING = "watching"  # rules are evaluated at their interval; nothing has fired
    HELD = "held"  # a person vetoed automatic rollback; rules still run, nothing acts
    AWAITING_APPROVAL = "awaiting_approval"  # an `approve` rule fired; waits for an approver
    ROLLING_BACK = "rolling_back"  # the rollback plan is executing (rules stop)
    # the rollback succeeded; rules keep judging the restored version for the window's
    # `confirm_for`, and nothing acts any more (never a second rollback)
    CONFIRMING = "confirming"
    ROLLED_BACK = "rolled_back"  # terminal: rolled back, and the rules that fired recovered
    # (or the window had nothing to confirm: confirm_for 0, or their data went missing)
    # terminal: rolled back, but the rules that fired still breach on the restored
    # version: the deploy was not the cause, people are told (escalated)
    ROLLBACK_INEFFECTIVE = "rollback_ineffective"
    ROLLBACK_FAILED = "rollback_failed"  # terminal: a step failed permanently; people must act
    PASSED = "passed"  # terminal: the window elapsed, every rollback rule judged and healthy
    # terminal: the window elapsed, but a rollback rule could not be judged for most of it
    # (blind source, no data, too little evidence): nothing that could not look says "fine"
    INCONCLUSIVE = "inconclusive"
    # terminal: a person held the window and a rollback rule was firing when its time ran
    # out: it was failing and nobody acted, so the holder is paged
    EXPIRED_WHILE_HELD = "expired_while_held"
    # terminal: a shadow window whose rules fired: it would have rolled back
    WOULD_HAVE_ROLLED_BACK = "would_have_rolled_back"
    ABORTED = "aborted"  # terminal: closed by a person without rolling back
    SUPERSEDED = "superseded"  # terminal: a newer deploy of the service opened its own window

    @property
    def terminal(self) -> bool:
        """True once nothing more will happen to the window."""
        return self in TERMINAL_PHASES

    @property
    def evaluating(self) -> bool:
        """True while the window's rules are still sampled and judged."""
        return self in EVALUATING_PHASES


TERMINAL_PHASES = frozenset(
    {
        WindowPhase.ROLLED_BACK,
        WindowPhase.ROLLBACK_INEFFECTIVE,
        WindowPhase.ROLLBACK_FAILED,
        WindowPhase.PASSED,
        WindowPhase.INCONCLUSIVE,
        WindowPhase.EXPIRED_WHILE_HELD,
        WindowPhase.WOULD_HAVE_ROLLED_BACK,
        WindowPhase.ABORTED,
        WindowPhase.SUPERSEDED,
    }
)
EVALUATING_PHASES = frozenset(
    {
        WindowPhase.WATCHING,
        WindowPhase.HELD,
        WindowPhase.AWAITING_APPROVAL,
        WindowPhase.CONFIRMING,
    }
)


class Verdict(StrEnum):
    """What one evaluation of a rule concluded."""

    OK = "ok"  # the condition does not hold (or no data and the rule says that is fine)
    PENDING = "pending"  # the condition holds, but not yet for the rule's `for`
    FIRING = "firing"  # the condition held at every evaluation for `for`: act
    INCONCLUSIVE = "inconclusive"  # no data or an error: neither healthy nor a breach


class Action(StrEnum):
    """What a firing rule asks for."""

    ROLLBACK = "rollback"  # roll back automatically, exactly once
    APPROVE = "approve"  # roll back once a named approver says so
    NOTIFY = "notify"  # tell people; a person decides


class SampleKind(StrEnum):
    """The three things a source can come back with."""

    VALUES = "values"
    NO_DATA = "no_data"
    ERROR = "error"


@dataclass(frozen=True, slots=True)  # 10,000 of them in one shared answer
class Series:
    """One labelled number in a sample (a Prometheus series, a SQL row, ...)."""

    value: float
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Canonical identity of the series, ``{a="1",b="2"}`` or ``{}``."""
        return series_key(self.labels)


def series_key(labels: Mapping[str, str]) -> str:
    """Render labels the way Prometheus prints a series selector."""
    return "{" + ",".join([f"{k}={_quoted(v)}" for k, v in sorted(labels.items())]) + "}"


@dataclass(frozen=True)
class Sample:
    """What a source returned for one rule at one instant."""

    kind: SampleKind
    series: tuple[Series, ...] = ()
    error: str | None = None
    transient: bool = True
    detail: str | None = None
    # What could not answer when it is not the rule's own source (sources/blindness.py): e.g.
    # "Prometheus job api" when every target of the rule's scrape job is down.
    unreachable: str | None = None

    @classmethod
    def of(cls, *values: float | Series, detail: str | None = None) -> Sample:
        """A sample holding values; bare floats become unlabelled series."""
        series = tuple(v if isinstance(v, Series) else Series(float(v)) for v in values)
        if not series:
            return cls.no_data("empty result", detail=detail)
        return cls(SampleKind.VALUES, series, detail=detail)

    @classmethod
    def no_data(cls, reason: str, *, detail: str | None = None) -> Sample:
        """The source answered, but with nothing to judge."""
        return cls(SampleKind.NO_DATA, error=reason, detail=detail)

    @classmethod
    def failed(
        cls, reason: str, *, transient: bool = True, unreachable: str | None = None
    ) -> Sample:
        """The source could not answer."""
        return cls(SampleKind.ERROR, error=reason, transient=transient, unreachable=unreachable)


@dataclass(frozen=True)
class RuleState:
    """Everything evaluate() needs to remember about a rule between samples.

    Persisted per (window, rule) so a restart resumes `for` progress.
    """

    verdict: Verdict = Verdict.OK
    pending_since: Mapping[str, float] = field(default_factory=dict)
    last_value: float | None = None
    last_eval_at: float | None = None
    fired_at: float | None = None
    failures: int = 0  # consecutive transient errors: how long the rule's source has been blind
    reason: str | None = None
    worst_value: float | None = None
    judge: JudgeState | None = None  # a judge rule's counts and evidence
    # Coverage (watchdog/evaluation/coverage.py): evaluations that judged the version (had data
    # and a verdict) and those that could not, by cause ("blind", "no data", ...), and
    # the last reason one could not: a window passes only on rules judged for most of it.
    judged: int = 0
    unjudged: int = 0
    gaps: Mapping[str, int] = field(default_factory=dict)
    gap_reason: str | None = None

    def to_json(self) -> str:
        """Serialise for the store."""
        data: dict[str, Any] = {
            "verdict": self.verdict.value,
            "pending_since": dict(self.pending_since),
            "last_value": _num_out(self.last_value),
            "last_eval_at": self.last_eval_at,
            "fired_at": self.fired_at,
            "failures": self.failures,
            "reason": self.reason,
            "worst_value": _num_out(self.worst_value),
        }
        if self.judged or self.unjudged:
            data["coverage"] = {
                "judged": self.judged,
                "unjudged": self.unjudged,
                "gaps": dict(self.gaps),
                "gap_reason": self.gap_reason,
            }
        if self.judge is not None:  # its counts may be NaN, which orjson would write as null
            return json.dumps({**data, "judge": self.judge.to_dict()}, sort_keys=True)
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()  # 1/5 of json's time

    @classmethod
    def from_json(cls, text: str) -> RuleState:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        coverage: dict[str, Any] = data.get("coverage") or {}
        return cls(
            verdict=Verdict(data.get("verdict", "ok")),
            pending_since={str(k): float(v) for k, v in data.get("pending_since", {}).items()},
            last_value=_num_in(data.get("last_value")),
            last_eval_at=data.get("last_eval_at"),
            fired_at=data.get("fired_at"),
            failures=int(data.get("failures", 0)),
            reason=data.get("reason"),
            worst_value=_num_in(data.get("worst_value")),
            judge=JudgeState.from_dict(data["judge"]) if data.get("judge") else None,
            judged=int(coverage.get("judged", 0)),
            unjudged=int(coverage.get("unjudged", 0)),
            gaps={str(k): int(v) for k, v in (coverage.get("gaps") or {}).items()},
            gap_reason=coverage.get("gap_reason"),
        )


def _num_out(v: float | None) -> float | str | None:
    # JSON has no NaN/Inf; keep them as strings so a state round-trips exactly.
    return v if v is None or math.isfinite(v) else str(v)


def _num_in(v: float | str | None) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class Deployment:
    """A deploy the watchdog was told about; it opens one watch window."""

    service: str
    environment: str
    version: str
    previous_version: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    plan: str | None = None

    def template_vars(self) -> dict[str, str]:
        """The values rule templates may refer to."""
        out = {
            "service": self.service,
            "environment": self.environment,
            "version": self.version,
            "previous_version": self.previous_version or "",
        }
        out.update({f"labels.{k}": v for k, v in self.labels.items()})
        return out


@dataclass(frozen=True)
class Window:
    """One deployment's watch window and where it stands."""

    id: str
    deployment: Deployment
    phase: WindowPhase
    started_at: float
    ends_at: float
    updated_at: float
    # rule name -> series key -> value captured at window start (see sources' baseline)
    baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    reason: str | None = None
    shadow: bool = False  # nothing acts on its own: decisions journal `would_roll_back`
    confirm_for: float = 0.0  # seconds to watch the restored version after a rollback

    @property
    def evidence_since(self) -> float:
        """Where the data judged live begins: the window's opening, or, while confirming,
        the rollback's success (only the restored version's evidence counts then)."""
        if self.phase is WindowPhase.CONFIRMING:
            return self.updated_at
        return self.started_at

    @property
    def confirm_until(self) -> float | None:
        """When confirmation ends, while the window is ``confirming``.

        Counted from the move to ``confirming`` (``updated_at``): nothing else changes a
        confirming window until it leaves the phase.
        """
        if self.phase is not WindowPhase.CONFIRMING:
            return None
        return self.updated_at + self.confirm_for

    def with_phase(self, phase: WindowPhase, at: float, reason: str | None = None) -> Window:
        """A copy moved to ``phase``."""
        return replace(self, phase=phase, updated_at=at, reason=reason)
