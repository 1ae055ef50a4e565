"""The judge's evidence in words and on a rule's view, for the status page, the API and
``watchdog deploy status``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from watchdog.foundation.model import RuleState
from watchdog.rulefile.judge import JudgeRule

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# The Controller port's RuleView, without importing the port: the judge sits below it.
View = TypeVar("View", bound="DataclassInstance")


def _pct(value: Any) -> str:
    return f"{100 * float(value):.3g}%" if isinstance(value, int | float) else "n/a"


def _count(value: Any) -> str:
    return f"{float(value):,.0f}" if isinstance(value, int | float) else "n/a"


def evidence_text(ev: Mapping[str, Any]) -> str:
    """``12 of 4,800 bad (0.25%) · baseline 0.1% of 36,000 · limit 0.67% · …``."""
    parts = [f"{_count(ev.get('errors'))} of {_count(ev.get('requests'))} bad"]
    parts[0] += f" ({_pct(ev.get('proportion'))})" if ev.get("proportion") is not None else ""
    if ev.get("baseline_requests"):
        parts.append(
            f"baseline {_pct(ev.get('baseline'))} of {_count(ev.get('baseline_requests'))}"
        )
    parts.append(f"limit {_pct(ev.get('limit'))}")
    alpha = ev.get("alpha")
    fires = f" (fires at {100 * (1 - float(alpha)):.4g}%)" if isinstance(alpha, float) else ""
    parts.append(f"confidence {100 * float(ev.get('confidence') or 0.0):.2f}%{fires}")
    if ev.get("needed") and (ev.get("requests") or 0) < ev["needed"]:
        parts.append(f"needs ~{_count(ev.get('needed'))} requests to tell")
    if (ev.get("dispersion") or 1.0) > 1.05:
        parts.append(f"bursty errors: counts weigh 1/{float(ev['dispersion']):.3g}")
    return " · ".join(parts)


def limit_text(rule_alpha: float, ev: Mapping[str, Any] | None) -> str:
    """What stands in a judge rule's THRESHOLD column."""
    limit = _pct(ev.get("limit")) if ev and ev.get("limit") is not None else "not set yet"
    return f"judge: limit {limit}, alpha {rule_alpha:g}"


def judge_view(view: View, rule: JudgeRule, state: RuleState | None) -> View:
    """A judge rule's view: its current limit stands for the threshold (and is drawn on
    the graph), the baseline is the measured proportion, the evidence goes along."""
    ev = dict(state.judge.evidence) if state is not None and state.judge is not None else None
    return replace(
        view,
        threshold=limit_text(rule.alpha, ev),
        baseline=ev.get("baseline") if ev else None,
        threshold_value=ev.get("limit") if ev else None,
        evidence=ev,
    )
