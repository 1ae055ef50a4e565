"""What the engine says when a rule's verdict changes, and the decision a firing rule makes.

Split from :mod:`watchdog.lifecycle.engine` (the loop) because it is wording and data, not
scheduling: the journal entry of a transition (pending, firing, inconclusive,
resolved) with everything the status page, Slack and webhooks show, and the
:class:`~watchdog.pipeline.Decision` a firing evaluation hands to the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.evaluation.evaluate import Evaluation
from watchdog.evaluation.wording import (
    describe,
    graph_query,
    jsonable,
    rule_summary,
    threshold_text,
)
from watchdog.foundation.model import EventKind, RuleState, Verdict, Window
from watchdog.pipeline import Decision
from watchdog.rulefile.load import AnyRule
from watchdog.store.journal import Journal

_KINDS = {
    Verdict.PENDING: EventKind.RULE_PENDING,
    Verdict.FIRING: EventKind.RULE_FIRING,
    Verdict.INCONCLUSIVE: EventKind.RULE_INCONCLUSIVE,
    Verdict.OK: EventKind.RULE_RESOLVED,
}


async def journal_transition(
    journal: Journal,
    window: Window,
    rule: AnyRule,
    previous: RuleState,
    result: Evaluation,
    now: float,
    variables: Mapping[str, str],
) -> None:
    """Journal ``rule``'s move from ``previous`` to ``result`` (notifying when it fires)."""
    if result.verdict is Verdict.OK and previous.verdict is Verdict.INCONCLUSIVE:
        kind_text = "has data again"
    else:
        kind_text = result.verdict.value
    message = f"{rule.name} {kind_text}: {describe(rule, result)}"
    shadow = window.shadow or rule.shadow  # nothing acts on this rule's firing
    if shadow and result.verdict is Verdict.FIRING and rule.action.value != "notify":
        message += " (shadow mode: nothing will act)"
    notify = result.verdict is Verdict.FIRING or (
        result.verdict is Verdict.PENDING and rule.severity.value == "critical"
    )
    await journal.record(
        window,
        _KINDS[result.verdict],
        message,
        at=now,
        rule=rule.name,
        data={
            "value": jsonable(result.value),
            "threshold": threshold_text(rule, result),
            "baseline": jsonable(result.baseline),
            "for": rule.for_,
            "action": rule.action.value,
            "severity": told_severity(rule, result.verdict),
            "reason": result.reason,
            "query": graph_query(rule, window, variables),
            "shadow": shadow,
        },
        notify=notify,
    )


def decision_for(window: Window, rule: AnyRule, result: Evaluation, now: float) -> Decision:
    """The decision a firing evaluation of ``rule`` hands to the pipeline."""
    return Decision(
        window=window,
        action=rule.action,
        trigger=rule.name,
        actor=f"rule:{rule.name}",
        reason=rule_summary(rule, window, result),
        at=now,
        evaluation=result,
        grace=rule.grace,
        shadow=rule.shadow,
    )


def told_severity(rule: AnyRule, verdict: Verdict) -> str:
    """The rule's severity, but a pending rule is a warning at most (it may never fire)."""
    if verdict is Verdict.PENDING and rule.severity.value == "critical":
        return "warning"
    return rule.severity.value
