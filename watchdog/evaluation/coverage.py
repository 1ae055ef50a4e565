"""Coverage: did an evaluation judge the version, and was a window judged for most of it?

``passed`` is a claim that the rules looked and found the version healthy. Each
evaluation is counted in its rule's state (persisted with it, so a restart keeps the
count) as *judged* or as a *gap* with its cause:

- judged: the rule's verdict is pending or firing (a breach, including a ``no_data`` or
  ``on_error`` policy of ``breach``: the failure is the signal), or ok on a value it
  actually read;
- ``blind``: the source could not answer (a transient error: refused, timed out);
- ``source error``: the source refused the query (a PromQL error, a bad target);
- ``no data``: the source answered with nothing to judge. A ``no_data: ok`` policy
  keeps the rule from reading as inconclusive at each evaluation, but an empty answer
  is still no evidence: a window whose rule only ever saw nothing did not judge it;
- ``insufficient evidence``: values, but no verdict (a judge rule with too little
  traffic for its test, a relative threshold without its baseline).

At the end of a window the rules that decide it (:func:`deciding`: ``rollback`` and
``approve`` rules; ``notify`` rules never act, so their blindness never blocks a pass)
must each have been judged in at least ``judged_fraction`` of their evaluations (the
setting, default 0.5) and at least once; otherwise the window ends ``inconclusive``
with one :class:`Gap` per such rule (watchdog/lifecycle/endings.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from watchdog.evaluation.evaluate import Evaluation
from watchdog.foundation.durations import format_duration
from watchdog.foundation.model import Action, RuleState, Sample, SampleKind, Verdict, Window
from watchdog.rulefile.load import AnyRule
from watchdog.sources.kinds import KINDS

_Frozen = TypeVar("_Frozen")
BLIND = "blind"
SOURCE_ERROR = "source error"
NO_DATA = "no data"
NO_VERDICT = "insufficient evidence"
NEVER = "never evaluated"
DECIDING = frozenset({Action.ROLLBACK, Action.APPROVE})
DEFAULT_FRACTION = 0.5
_REASON_CHARS = 300


def gap_cause(sample: Sample, result: Evaluation) -> str | None:
    """Why this evaluation did not judge the version (None: it did)."""
    if result.verdict in (Verdict.PENDING, Verdict.FIRING):
        return None
    read = any(o.value is not None for o in result.observations)
    if result.verdict is Verdict.OK and read:
        return None
    if sample.kind is SampleKind.ERROR:
        return BLIND if sample.transient else SOURCE_ERROR
    if sample.kind is SampleKind.NO_DATA or not read:
        return NO_DATA
    return NO_VERDICT


def counted(previous: RuleState, sample: Sample, result: Evaluation) -> Evaluation:
    """``result`` with its state's coverage carried on from ``previous`` plus this one."""
    cause = gap_cause(sample, result)
    gaps = dict(previous.gaps)
    judged, unjudged, reason = previous.judged, previous.unjudged, previous.gap_reason
    if cause is None:
        judged += 1
    else:
        gaps[cause] = gaps.get(cause, 0) + 1
        why = sample.error if sample.kind is not SampleKind.VALUES else result.reason
        unjudged, reason = unjudged + 1, (why or cause)[:_REASON_CHARS]
    state = _evolved(result.state, judged=judged, unjudged=unjudged, gaps=gaps, gap_reason=reason)
    return _evolved(result, state=state)


def _evolved(frozen: _Frozen, **changes: object) -> _Frozen:
    """``dataclasses.replace`` for a frozen dataclass without ``__post_init__`` or
    slots, at a third of its cost: every evaluation makes two (with ``replace``, a
    field walk and a frozen ``__init__`` each, ~10 % of an evaluation, bench/scale.py)."""
    copy = object.__new__(type(frozen))
    vars(copy).update(vars(frozen), **changes)
    return copy


def deciding(rules: Sequence[AnyRule], window: Window) -> list[AnyRule]:
    """The rules whose judgement a pass stands on: those that would roll back (a shadow
    rule only in a shadow window: in a live one it protects nothing yet)."""
    return [r for r in rules if r.action in DECIDING and (window.shadow or not r.shadow)]


def needed(total: int, fraction: float) -> int:
    """Judged evaluations needed out of ``total`` (never fewer than one)."""
    return max(1, math.ceil(total * fraction - 1e-9))


@dataclass(frozen=True)
class Gap:
    """A deciding rule that was not judged for most of the window, and why."""

    rule: str
    source: str
    judged: int
    total: int
    needed: int
    cause: str  # the most frequent cause of its gaps
    reason: str | None  # the last gap's detail (the source's error, ...)

    def text(self) -> str:
        """``error_ratio: blind, judged 0 of 60 evaluations (needs 30): connection refused``."""
        if self.total == 0:
            return f"{self.rule}: never evaluated"
        why = f": {self.reason}" if self.reason and self.reason != self.cause else ""
        return (
            f"{self.rule}: {self.cause}, judged {self.judged} of {self.total} evaluations "
            f"(needs {self.needed}){why}"
        )

    def as_dict(self) -> dict[str, object]:
        """JSON form for the journal's data and the API."""
        return {
            "rule": self.rule,
            "source": self.source,
            "judged": self.judged,
            "evaluations": self.total,
            "needed": self.needed,
            "cause": self.cause,
            "reason": self.reason,
        }


def gaps(rules: Sequence[AnyRule], states: Mapping[str, RuleState], fraction: float) -> list[Gap]:
    """The rules of ``rules`` judged in fewer than ``fraction`` of their evaluations."""
    out = []
    for rule in rules:
        state = states.get(rule.name) or RuleState()
        total = state.judged + state.unjudged
        need = needed(total, fraction)
        if state.judged >= need:
            continue
        cause = max(state.gaps.items(), key=lambda kv: kv[1])[0] if state.gaps else NEVER
        out.append(Gap(rule.name, rule.source, state.judged, total, need, cause, state.gap_reason))
    return out


def inconclusive_message(window: Window, found: Sequence[Gap], deciding: int) -> str:
    """What people are told: the window watched nothing (no deciding rule of the
    ``deciding`` judged at all) or too little, per rule, and what to check."""
    d = window.deployment
    length = format_duration(window.ends_at - window.started_at)
    sources = sorted({_title(g.source) for g in found})
    per_rule = "; ".join(g.text() for g in found)
    if len(found) >= deciding and all(g.judged == 0 for g in found):
        head = f"watched nothing for {length}"
    else:
        head = f"not judged for most of {length}"
    return (
        f"inconclusive: {head}: {per_rule}. Not a pass: {d.service} {d.version} stays "
        f"deployed unverified; check {', '.join(sources)}"
    )


def _title(source: str) -> str:
    """How the page names what to check (a kind no longer in the table: as stored)."""
    known = KINDS.get(source)
    return known.title if known is not None else source
