"""How rule outcomes are put into words: journal messages, summaries, graph queries."""

from __future__ import annotations

import math
from collections.abc import Mapping

from watchdog.evaluation.evaluate import Evaluation
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import Window, WindowPhase
from watchdog.judge.words import limit_text
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import AnyRule
from watchdog.rulefile.template import placeholders, promql_escape, render, render_message
from watchdog.sources.kinds import kind


def describe(rule: AnyRule, result: Evaluation) -> str:
    """``value 0.21, threshold > 0.05`` or the reason there is no value."""
    if result.value is None or isinstance(rule, JudgeRule):
        return result.reason or "no value"  # a judge's reason is its evidence
    return f"value {result.value:.4g}, threshold {threshold_text(rule, result)}"


def threshold_text(rule: AnyRule, result: Evaluation) -> str:
    """The threshold as judged: the baseline filled in (without one, the absolute clauses
    that were judged), or a judge's current limit."""
    if isinstance(rule, JudgeRule):
        judge = result.state.judge
        return limit_text(rule.alpha, judge.evidence if judge is not None else None)
    return judged_threshold(rule, result.baseline)


def judged_threshold(rule: AnyRule, baseline: float | None) -> str:
    """The threshold the value was judged on: without a baseline, its absolute clauses."""
    threshold = rule.threshold
    if not threshold.uses_baseline or (baseline is not None and math.isfinite(baseline)):
        return threshold.describe(baseline)
    absolute = " and ".join(c.describe() for c in threshold.absolute)
    if not absolute:
        return f"{threshold.describe()} (no baseline)"
    return f"{absolute} (no baseline before the deploy)"


def rule_summary(rule: AnyRule, window: Window, result: Evaluation) -> str:
    """The rule's ``summary`` with its variables filled in, or a generated one.

    A summary that quotes ``{{ baseline }}`` reads wrong without one ("2x baseline
    (n/as)"): when the baseline is missing, the generated wording says what was judged.
    """
    no_baseline = result.baseline is None or not math.isfinite(result.baseline)
    if not rule.summary or (no_baseline and "baseline" in placeholders(rule.summary)):
        return f"{rule.name} fired: {describe(rule, result)}"
    variables = dict(window.deployment.template_vars())
    variables.update(
        value=f"{result.value:.4g}" if result.value is not None else "n/a",
        threshold=threshold_text(rule, result),
        baseline=f"{result.baseline:.4g}" if result.baseline is not None else "n/a",
        rule=rule.name,
        series=breaching_series(result),
    )
    return render_message(rule.summary, variables)


def breaching_series(result: Evaluation) -> str:
    """The worst breaching series' labels (``relation="order_items.order_id"``): the one
    whose value is the rule's value, else the first breaching one."""
    breaching = [o for o in result.observations if o.status.value == "breach" and o.key != "{}"]
    worst = [o for o in breaching if o.value is not None and o.value == result.value]
    for obs in worst or breaching:
        return obs.key[1:-1]
    return ""


def graph_query(
    rule: AnyRule, window: Window, extra: Mapping[str, str] | None = None
) -> str | None:
    """The rule's PromQL as it ran, for the graph link in messages (``extra``: the
    settings templates read, e.g. ``service_label``)."""
    graph = kind(rule.source).graph
    query = graph(rule) if graph is not None else None
    if query is None:
        return None
    try:
        variables = {**window.deployment.template_vars(), **(extra or {})}
        return render(query, variables, promql_escape)
    except PermanentError:
        return None


def jsonable(value: float | None) -> float | str | None:
    """A number for the journal's JSON: NaN and Inf are kept readable as strings."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


_WHAT_NOW = {
    WindowPhase.ROLLING_BACK: "a rollback is running: `watchdog deploy wait {id}` follows it",
    WindowPhase.CONFIRMING: "it rolled back and is confirming the recovery: "
    "`watchdog deploy wait {id}` follows it",
    WindowPhase.HELD: "it is held: `watchdog deploy resume {id}` lets the rules act again",
    WindowPhase.AWAITING_APPROVAL: "it waits for an approver: "
    "`watchdog deploy rollback {id}` as one of notify.approver_ids",
    WindowPhase.WATCHING: "it is being watched: `watchdog deploy status {id}` shows its rules",
}


def cannot(window_id: str, phase: WindowPhase, doing: str) -> str:
    """A 409's message: why ``doing`` is refused in ``phase``, and what to do instead."""
    hint = _WHAT_NOW.get(phase)
    if hint is None:  # ended
        hint = (
            "it has ended: `watchdog deploy status {id}` shows why; roll back with your "
            "deploy tool, or `watchdog deploy start` watches a new deploy"
        )
    return f"window {window_id} is {phase.value}: cannot {doing}; " + hint.format(id=window_id)
