"""Recovery confirmed after a rollback, and never a second rollback.

A rollback that succeeded leaves the window ``confirming`` (``Record``): the engine keeps
evaluating every rule against the restored version for the window's ``confirm_for``,
and nothing acts (``Gate`` only acts on watching/held/awaiting windows, and the action
log already holds the window's one rollback). The rules to confirm are *the rules that
fired*, read from the journal: those firing when the rollback started, plus the one that
triggered it (a manual rollback with nothing firing confirms every rule). When the time is up the
engine asks :class:`Confirmation` for the outcome:

- every such rule is ``ok`` → ``rolled_back``, journal ``recovered`` with how long the
  slowest took to come back (from the rollback's success to its last return to ok);
- any is still ``pending`` or ``firing`` → ``rollback_ineffective``, journal
  ``rollback_ineffective`` (critical: PagerDuty triggers, Slack mentions on-call) naming
  them: the deploy was not the cause, and the watchdog does not roll back again;
- otherwise (a rule without data at the end: an error, or an empty answer even when
  its ``no_data`` policy reads that as ok, or not evaluated since the rollback) →
  ``rolled_back``, journal ``recovery_unconfirmed``: nobody can say, so people are told
  so. No data is never a recovery.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from watchdog.evaluation.wording import jsonable
from watchdog.foundation.durations import format_duration
from watchdog.foundation.model import Event, EventKind, RuleState, Verdict, Window, WindowPhase
from watchdog.store.base import EventStore, RulePoint, RuleStateStore, WindowStore
from watchdog.store.journal import Journal

BREACHING = frozenset({Verdict.PENDING, Verdict.FIRING})
_TRANSITIONS = frozenset(
    {
        EventKind.RULE_PENDING,
        EventKind.RULE_FIRING,
        EventKind.RULE_RESOLVED,
        EventKind.RULE_INCONCLUSIVE,
    }
)


def restored_evidence(state: RuleState, window: Window) -> RuleState:
    """A rule's state for its first judgement of the restored version: a judge rule's
    counts start again (what the rolled-back version did is not the restored one's
    evidence); verdicts and ``for`` progress carry on, so a recovery is a transition."""
    if state.judge is None or window.phase is not WindowPhase.CONFIRMING:
        return state
    if (state.last_eval_at or 0.0) >= window.evidence_since:
        return state
    return replace(state, judge=None)


class ConfirmStore(WindowStore, EventStore, RuleStateStore, Protocol):
    """What a confirmation reads and writes: the window's phase, its journal and the
    rules' points (when each came back on data)."""


def fired_rules(events: Sequence[Event]) -> list[str]:
    """The rules a rollback answered, from the journal: those firing when it started
    (each rule's last transition before ``rollback_started``), plus its trigger."""
    firing: set[str] = set()
    for event in events:
        if event.kind is EventKind.ROLLBACK_STARTED:
            trigger = event.data.get("trigger")
            if isinstance(trigger, str) and trigger != "manual":
                firing.add(trigger)
            break
        if event.rule is not None and event.kind in _TRANSITIONS:
            if event.kind is EventKind.RULE_FIRING:
                firing.add(event.rule)
            else:
                firing.discard(event.rule)
    return sorted(firing)


@dataclass(frozen=True)
class Outcome:
    """How the rules that fired stand at the end of the confirmation."""

    recovered: dict[str, float]  # rule -> seconds from the rollback to its return to ok
    breaching: tuple[str, ...]  # still pending or firing
    unknown: tuple[str, ...]  # neither (no data, or never evaluated)

    @property
    def took(self) -> float | None:
        """How long the slowest rule took to recover (None when none did)."""
        return max(self.recovered.values()) if self.recovered else None


def judge(
    rules: Sequence[str],
    states: Mapping[str, RuleState],
    after: Sequence[Event],
    since: float,
    points: Mapping[str, Sequence[RulePoint]] | None = None,
) -> Outcome:
    """Pure: the outcome of ``rules`` given their states and the journal ``after`` the
    rollback succeeded (at ``since``); ``points``, each rule's evaluations, date a
    recovery by the first healthy value read (a return to ok on no data is no recovery)."""
    recovered: dict[str, float] = {}
    breaching: list[str] = []
    unknown: list[str] = []
    for name in rules:
        state = states.get(name)
        verdict = state.verdict if state is not None else None
        if verdict in BREACHING:
            breaching.append(name)
        elif verdict is Verdict.OK and _read_since(state, since):
            back = _back_on_data((points or {}).get(name, ()), since)
            turned = back if back is not None else _back_to_ok(name, after, since)
            recovered[name] = max(0.0, turned - since)
        else:
            unknown.append(name)
    return Outcome(recovered, tuple(breaching), tuple(unknown))


def _read_since(state: RuleState | None, since: float) -> bool:
    """True when the rule's last evaluation, after the rollback, read a value: an empty
    answer is ok by a ``no_data: ok`` policy, but it is never a recovery."""
    if state is None or state.last_value is None:
        return False
    return (state.last_eval_at or 0.0) >= since


def _back_on_data(points: Sequence[RulePoint], since: float) -> float | None:
    """When the rule's values turned healthy for good after the rollback: the first
    point that read a value judged ok after its last breaching or empty one (None when
    no point says so, e.g. older than the points kept)."""
    turned = None
    for point in points:
        if point.at < since:
            continue
        healthy = point.value is not None and point.verdict is Verdict.OK
        turned = (turned if turned is not None else point.at) if healthy else None
    return turned


def _back_to_ok(rule: str, after: Sequence[Event], since: float) -> float:
    """When ``rule`` last turned ok after the rollback (``since`` if it never left ok)."""
    turned = since
    for event in after:
        if event.rule == rule and event.kind in _TRANSITIONS:
            turned = event.at
    return turned


class Confirmation:
    """Ends a confirming window: ``rolled_back`` (recovered) or ``rollback_ineffective``."""

    def __init__(self, store: ConfirmStore, journal: Journal) -> None:
        self._store = store
        self._journal = journal

    async def finish(
        self,
        window: Window,
        now: float,
        states: Mapping[str, RuleState],
        standing: Collection[str] = (),
    ) -> WindowPhase | None:
        """Judge the rules that fired and close the window: the phase it ended in, or
        None if it had moved on."""
        events = await self._store.list_events(window.id)
        done = [e for e in events if e.kind is EventKind.ROLLBACK_SUCCEEDED]
        since = done[-1].at if done else window.updated_at
        seq = (done[-1].seq or 0) if done else 0
        after = [e for e in events if (e.seq or 0) > seq]
        points = await self._store.list_rule_points(window.id)
        outcome = judge(fired_rules(events) or sorted(states), states, after, since, points)
        ineffective = bool(outcome.breaching)
        phase = WindowPhase.ROLLBACK_INEFFECTIVE if ineffective else WindowPhase.ROLLED_BACK
        kind, message = _words(window, outcome)
        repair = sorted(set(standing) & {*outcome.recovered, *outcome.breaching, *outcome.unknown})
        if repair:
            message += (
                f". {', '.join(repair)}: the rows counted before the rollback stay after it "
                "and still need repair (only new ones were judged)"
            )
        moved = await self._store.set_phase(
            window.id,
            phase,
            at=now,
            reason=message if ineffective else None,
            expected={WindowPhase.CONFIRMING},
        )
        if not moved:
            return None
        await self._journal.record(
            window.with_phase(phase, now, message if ineffective else None),
            kind,
            message,
            at=now,
            data={**_data(window, outcome, states), "needs_repair": repair},
        )
        return phase


def _words(window: Window, outcome: Outcome) -> tuple[EventKind, str]:
    target = window.deployment.previous_version or "the previous version"
    watched = format_duration(window.confirm_for)
    if outcome.breaching:
        return EventKind.ROLLBACK_INEFFECTIVE, (
            f"rollback ineffective: {', '.join(outcome.breaching)} still breaching {watched} "
            f"after rolling back to {target}: the rollback did not fix it (the deploy may not "
            "be the only cause); the watchdog will not roll back again: people must look"
        )
    if outcome.unknown:
        return EventKind.RECOVERY_UNCONFIRMED, (
            f"recovery not confirmed: {', '.join(outcome.unknown)} had no verdict at the "
            f"end of {watched} on {target}; look before trusting the rollback"
        )
    took = format_duration(outcome.took or 0.0)
    return EventKind.RECOVERED, (
        f"recovered: {', '.join(sorted(outcome.recovered))} back to ok {took} after "
        f"the rollback; {window.deployment.service} stays on {target}"
    )


def _data(window: Window, outcome: Outcome, states: Mapping[str, RuleState]) -> dict[str, Any]:
    def rule(name: str) -> dict[str, Any]:
        state = states.get(name)
        return {
            "verdict": state.verdict.value if state else None,
            "value": jsonable(state.last_value) if state else None,
            "recovered_after": outcome.recovered.get(name),
        }

    names = [*outcome.recovered, *outcome.breaching, *outcome.unknown]
    return {
        "recovery": {name: rule(name) for name in sorted(names)},
        "took": outcome.took,
        "confirm_for": window.confirm_for,
        "breaching": list(outcome.breaching),
        "severity": "critical" if outcome.breaching else "info",
    }
