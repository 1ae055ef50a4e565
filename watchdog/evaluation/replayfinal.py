"""Each replayed rule's final verdict: did it judge the range, and what did it conclude?

A replay that says "no rollback" is a pass only when every rule could judge: it had
data for most of the range (more than half its evaluations answered with values) and,
at the last evaluation that had data, a verdict rather than "inconclusive" (a judge
rule that never gathered the evidence it needs, a baseline that never came). Verdicts:

- ``fired``: the rule fired (at ``fired_at``), whatever came after;
- ``no_data``: data for at most half of its evaluations ("no data for 25 of 30 minutes");
- ``inconclusive``: it had data but never enough to decide (seen vs needed evidence);
- ``pending``: breaching at the end, its ``for`` not yet met;
- ``ok``: judged healthy.

``no_data`` and ``inconclusive`` are *unjudged*: ``watchdog replay`` exits 9 for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from watchdog.evaluation.evaluate import Evaluation
from watchdog.foundation.model import Sample, SampleKind, Verdict, iso

MOST = 0.5  # a rule judged the range when more than this share of evaluations had data


@dataclass
class _Seen:
    """What one rule went through during the replay."""

    interval: float
    evaluations: int = 0
    without_data: int = 0
    fired_at: float | None = None
    last_judged: Verdict | None = None  # the verdict at the last evaluation with data
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Final:
    """One rule's final verdict over the replayed range."""

    rule: str
    verdict: str  # fired | no_data | inconclusive | pending | ok
    evaluations: int
    without_data: int
    interval: float
    fired_at: float | None = None
    reason: str = ""
    seen: float | None = None  # judge rules: the requests counted …
    needed: float | None = None  # … and the requests a verdict needs

    @property
    def judged(self) -> bool:
        """False when the rule could not judge most of the range."""
        return self.verdict not in ("no_data", "inconclusive")

    @property
    def minutes(self) -> tuple[float, float]:
        """(minutes without data, minutes replayed)."""
        return self.without_data * self.interval / 60, self.evaluations * self.interval / 60

    def text(self, when: Callable[[float], str] = str) -> str:
        """``no data for 25 of 30 minutes``, ``inconclusive: saw 120 requests, …``
        (``when`` writes the time it fired)."""
        missing, total = self.minutes
        gap = f"no data for {_minutes(missing)} of {_minutes(total)} minutes"
        if total < 2:  # a short range: in seconds
            gap = f"no data for {missing * 60:.0f}s of {total * 60:.0f}s"
        if self.verdict == "no_data":
            return gap
        head = self.verdict
        if self.fired_at is not None:
            head = f"fired at {when(self.fired_at)}"
        if self.verdict == "inconclusive" and self.needed:
            head += f": saw {self.seen or 0:,.0f} requests, needs ~{self.needed:,.0f} to tell"
        detail = self.reason.split(": ", 1)[-1] if self.reason else ""
        # A threshold rule's ok says nothing more; a judge's says what it counted.
        worth = self.verdict in ("fired", "pending") or (self.verdict == "ok" and self.seen)
        parts = [head] + ([detail] if detail and worth else [])
        if self.without_data:
            parts.append(gap)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as epoch seconds; minutes rounded to 0.1)."""
        missing, total = self.minutes
        return {
            "verdict": self.verdict,
            "judged": self.judged,
            "evaluations": self.evaluations,
            "evaluations_without_data": self.without_data,
            "minutes": round(total, 1),
            "minutes_without_data": round(missing, 1),
            "fired_at": self.fired_at,
            "reason": self.reason,
            "seen": self.seen,
            "needed": self.needed,
            "text": self.text(),
        }


def _minutes(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


class Tracker:
    """Follows every rule through the replay and says its final verdict."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}

    def observe(
        self, rule: Any, sample: Sample, ev: Evaluation, at: float, detail: str | None = None
    ) -> None:
        """Account one evaluation of ``rule`` (``detail``: its words, at a transition)."""
        seen = self._seen.setdefault(rule.name, _Seen(rule.effective_interval))
        seen.evaluations += 1
        # An answer whose every value is NaN (a ratio of no requests) is no data either.
        if sample.kind is not SampleKind.VALUES or ev.value is None:
            seen.without_data += 1
        else:
            seen.last_judged = ev.verdict
            seen.reason = ev.reason or detail or seen.reason
            judge = ev.state.judge
            seen.evidence = dict(judge.evidence) if judge is not None else {}
        if ev.verdict is Verdict.FIRING and seen.fired_at is None:
            seen.fired_at, seen.reason = at, detail or ev.reason or seen.reason

    def finals(self) -> dict[str, Final]:
        """Every observed rule's final verdict."""
        return {name: _final(name, seen) for name, seen in self._seen.items()}


def _final(name: str, s: _Seen) -> Final:
    if s.fired_at is not None:
        verdict = "fired"
    elif s.evaluations - s.without_data <= s.evaluations * MOST:
        verdict = "no_data"
    elif s.last_judged is Verdict.INCONCLUSIVE:
        verdict = "inconclusive"
    elif s.last_judged is Verdict.PENDING:
        verdict = "pending"
    else:
        verdict = "ok"
    seen, needed = s.evidence.get("requests"), s.evidence.get("needed")
    return Final(
        name,
        verdict,
        s.evaluations,
        s.without_data,
        s.interval,
        s.fired_at,
        s.reason,
        float(seen) if isinstance(seen, int | float) else None,
        float(needed) if isinstance(needed, int | float) else None,
    )


@dataclass(frozen=True)
class ReplayEvent:
    """One line of the replay's timeline."""

    at: float
    rule: str
    kind: str  # pending | firing | resolved | inconclusive | action
    message: str
    value: float | None = None
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (time as ISO 8601)."""
        out = asdict(self)
        out["at"] = iso(self.at)
        return out


@dataclass
class ReplayResult:
    """What the rules would have done over the range."""

    start: float
    end: float
    events: list[ReplayEvent] = field(default_factory=list)
    rollback_at: float | None = None
    rollback_rule: str | None = None
    evaluations: int = 0
    replayed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule -> why
    # Evaluations per rule, and those without data (empty answers and failed queries):
    # a replay that saw nothing is not a pass.
    per_rule: dict[str, int] = field(default_factory=dict)
    without_data: dict[str, int] = field(default_factory=dict)
    why_no_data: dict[str, str] = field(default_factory=dict)  # rule -> the last reason
    finals: dict[str, Final] = field(default_factory=dict)  # rule -> its final verdict

    @property
    def unjudged(self) -> list[str]:
        """Rules that could not judge most of the range (no data, or no verdict)."""
        return [name for name, final in self.finals.items() if not final.judged]

    @property
    def saw_no_data(self) -> list[str]:
        """Rules evaluated only without data (unknown service, empty range, no Prometheus)."""
        return [r for r, n in self.per_rule.items() if n and self.without_data.get(r) == n]

    def first(self, rule: str, kind: str) -> ReplayEvent | None:
        """The first event of ``kind`` for ``rule``."""
        return next((e for e in self.events if e.rule == rule and e.kind == kind), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "rollback_at": iso(self.rollback_at),
            "rollback_rule": self.rollback_rule,
            "evaluations": self.evaluations,
            "evaluations_without_data": sum(self.without_data.values()),
            "without_data": dict(self.without_data),
            "saw_no_data": {r: self.why_no_data.get(r, "") for r in self.saw_no_data},
            "replayed": self.replayed,
            "rules": {name: final.as_dict() for name, final in self.finals.items()},
            "unjudged": self.unjudged,
            "skipped": self.skipped,
            "events": [e.as_dict() for e in self.events],
        }
