"""How a window whose time ran out ends: the truthful terminal state, and its words.

Checked in this order (the first that applies wins; see docs/outcomes.md):

1. ``would_have_rolled_back``: a shadow decision was journaled (``would_roll_back``):
   a live window would have rolled back. Amber, with the rule and time.
2. ``expired_while_held``: the window was held by a person and a deciding rule was
   firing when time ran out: it was failing and nobody acted. Critical: PagerDuty
   triggers, Slack mentions the holder (the event's ``actor``). A window still
   ``awaiting_approval`` ends here too: the rollback waited for an approver who never
   answered (``data.awaiting_approval``).
3. ``inconclusive``: a deciding rule was not judged for most of the window
   (watchdog/evaluation/coverage.py): blind, no data, insufficient evidence, named per rule.
4. ``passed``: every deciding rule was judged for most of the window and found healthy.

Pure: :func:`ending` reads the window, its rules, their states and the journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchdog.evaluation import coverage
from watchdog.evaluation.wording import jsonable
from watchdog.foundation.model import Event, EventKind, RuleState, Verdict, Window, WindowPhase, iso
from watchdog.rulefile.load import AnyRule


@dataclass(frozen=True)
class Ending:
    """The phase an elapsed window moves to, the event that says so, and its words."""

    phase: WindowPhase
    kind: EventKind
    message: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str | None:
        """The window's ``reason`` (shown by the API): the message, unless it passed."""
        return None if self.phase is WindowPhase.PASSED else self.message


def ending(
    window: Window,
    rules: Sequence[AnyRule],
    states: Mapping[str, RuleState],
    events: Sequence[Event],
    fraction: float = coverage.DEFAULT_FRACTION,
) -> Ending:
    """The terminal state of ``window`` whose time is up (module doc for the order)."""
    summary = _summary(states)
    deciding = coverage.deciding(rules, window)
    would = next((e for e in events if e.kind is EventKind.WOULD_ROLL_BACK), None)
    if would is not None:
        return _would_have(window, would, summary)
    firing = sorted(r.name for r in deciding if _firing(states.get(r.name)))
    if window.phase is WindowPhase.HELD and firing:
        return _expired_held(window, firing, events, summary)
    if window.phase is WindowPhase.AWAITING_APPROVAL:
        # a rollback waited for an approver who never came: not a pass either
        return _expired_awaiting(window, events, summary)
    found = coverage.gaps(deciding, states, fraction)
    if found:
        return Ending(
            WindowPhase.INCONCLUSIVE,
            EventKind.WINDOW_INCONCLUSIVE,
            coverage.inconclusive_message(window, found, len(deciding)),
            {
                "rules": summary,
                "unjudged": [g.as_dict() for g in found],
                "judged_fraction": fraction,
                "severity": "warning",
            },
        )
    d = window.deployment
    return Ending(
        WindowPhase.PASSED,
        EventKind.WINDOW_PASSED,
        f"window passed: {d.service} {d.version} stays deployed",
        {"rules": summary, "would_roll_back": None},
    )


def _firing(state: RuleState | None) -> bool:
    return state is not None and state.verdict is Verdict.FIRING


def _would_have(window: Window, would: Event, summary: dict[str, Any]) -> Ending:
    d = window.deployment
    rule = would.rule or str(would.data.get("trigger") or "a rule")
    return Ending(
        WindowPhase.WOULD_HAVE_ROLLED_BACK,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
        f"would have rolled back: {rule} fired at {iso(would.at)}; in shadow mode nothing "
        f"ran, so {d.service} {d.version} stays deployed. A live window would have rolled "
        f"it back to {d.previous_version or 'the previous version'}",
        {
            "rules": summary,
            "would_roll_back": would.data.get("actor"),
            "rule": rule,
            "fired_at": iso(would.at),
            "severity": "warning",
        },
    )


def _expired_held(
    window: Window, firing: list[str], events: Sequence[Event], summary: dict[str, Any]
) -> Ending:
    d = window.deployment
    held = next((e for e in reversed(events) if e.kind is EventKind.HELD), None)
    holder = str(held.data.get("actor")) if held is not None else "a person"
    since = f" since {iso(held.at)}" if held is not None else ""
    return Ending(
        WindowPhase.EXPIRED_WHILE_HELD,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        f"expired while held: {', '.join(firing)} firing when the window ended, held by "
        f"{holder}{since}; nothing rolled back and {d.service} {d.version} is still "
        f"deployed. {holder}: roll back by hand or accept it",
        {
            "rules": summary,
            "firing": firing,
            "holder": holder,
            "actor": holder,  # the Slack channel mentions a slack:U… actor
            "severity": "critical",
        },
    )


def _expired_awaiting(window: Window, events: Sequence[Event], summary: dict[str, Any]) -> Ending:
    d = window.deployment
    asked = next((e for e in reversed(events) if e.kind is EventKind.APPROVAL_NEEDED), None)
    rules = [asked.rule] if asked is not None and asked.rule else []
    since = f" since {iso(asked.at)}" if asked is not None else ""
    what = ", ".join(rules) or "a rule"
    return Ending(
        WindowPhase.EXPIRED_WHILE_HELD,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        f"expired awaiting approval: {what} asked for a rollback{since} and no approver "
        f"answered before the window ended; nothing rolled back and {d.service} {d.version} "
        "is still deployed. Approvers: roll back by hand or accept it",
        {
            "rules": summary,
            "firing": rules,
            "holder": "the approvers",
            "actor": "approvers",
            "awaiting_approval": True,
            "severity": "critical",
        },
    )


def _summary(states: Mapping[str, RuleState]) -> dict[str, Any]:
    return {
        name: {
            "worst": jsonable(s.worst_value),
            "last_verdict": s.verdict.value,
            "judged": s.judged,
            "evaluations": s.judged + s.unjudged,
        }
        for name, s in sorted(states.items())
    }
