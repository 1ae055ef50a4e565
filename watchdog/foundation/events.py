"""The records a window leaves behind: its journal's events (:class:`EventKind`,
:class:`Event`) and the action log's rows (:class:`ActionStatus`, :class:`ActionRecord`).

Named in :mod:`watchdog.foundation.model` too, with the other domain nouns; this module imports
nothing of the package, so the model can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


def iso(ts: float | None) -> str | None:
    """Render epoch seconds as an ISO 8601 UTC string (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


class EventKind(StrEnum):
    """Entries of a window's append-only journal."""

    WINDOW_OPENED = "window_opened"
    WINDOW_MIDPOINT = "window_midpoint"
    WINDOW_PASSED = "window_passed"
    WINDOW_INCONCLUSIVE = "window_inconclusive"  # elapsed without enough evidence to judge
    WINDOW_EXPIRED_WHILE_HELD = "window_expired_while_held"  # elapsed held, a rule firing
    WINDOW_WOULD_HAVE_ROLLED_BACK = "window_would_have_rolled_back"  # shadow window fired
    WINDOW_SUPERSEDED = "window_superseded"
    WINDOW_ABORTED = "window_aborted"
    BASELINE_CAPTURED = "baseline_captured"
    RULE_PENDING = "rule_pending"
    RULE_FIRING = "rule_firing"
    RULE_RESOLVED = "rule_resolved"
    RULE_INCONCLUSIVE = "rule_inconclusive"
    HELD = "held"
    RESUMED = "resumed"
    ACTION_SUPPRESSED = "action_suppressed"
    APPROVAL_NEEDED = "approval_needed"
    ROLLBACK_REQUESTED = "rollback_requested"  # asked of a follower: kept for the leader
    ROLLBACK_STARTED = "rollback_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    ROLLBACK_SUCCEEDED = "rollback_succeeded"
    ROLLBACK_FAILED = "rollback_failed"
    NOTIFIED = "notified"
    # --- the on-call flow (notifications, Slack, grace, escalation) ---
    ROLLBACK_SCHEDULED = "rollback_scheduled"  # a grace period started: "rolling back in 60s"
    ACKNOWLEDGED = "acknowledged"  # a person is on it: stops escalation
    APPROVED = "approved"  # an approver allowed a rollback that needs approval
    ESCALATED = "escalated"  # a fired rule was not acknowledged in time
    INTERACTION = "interaction"  # a click in Slack: who, what, when, and the outcome
    WATCHDOG_BLIND = "watchdog_blind"  # a source failed N polls in a row (once per outage)
    WATCHDOG_SIGHTED = "watchdog_sighted"  # that source answers again
    SELECTOR_UNMATCHED = (
        "selector_unmatched"  # a rule's selector matches no series: it can never fire
    )
    RULE_ERROR = "rule_error"  # Prometheus refused a rule's query (HTTP 400): it cannot run
    NOTIFY_FAILED = "notify_failed"  # a notification could not be delivered (permanent)
    # --- crash safety (watchdog/recovery.py) ---
    STEP_STARTED = "step_started"  # written before each attempt: the intent, for recovery
    ROLLBACK_RESUMED = "rollback_resumed"  # a restart picked up an unfinished rollback
    # --- shadow mode and recovery confirmation (watchdog/lifecycle/confirm.py) ---
    WOULD_ROLL_BACK = "would_roll_back"  # shadow: a decision would have run this plan; nothing ran
    RECOVERED = "recovered"  # after the rollback the rules that fired are ok: how long it took
    # after the rollback and confirm_for, the rules that fired still breach: escalated
    ROLLBACK_INEFFECTIVE = "rollback_ineffective"
    # confirm_for ended with a rule that fired neither ok nor breaching (no data)
    RECOVERY_UNCONFIRMED = "recovery_unconfirmed"
    # --- at the door (issue 13) ---
    DEPLOY_REFUSED = "deploy_refused"  # a deploy of this service refused (unseen previous_version)
    # --- high availability (watchdog/ha/) ---
    LEADERSHIP_LOST = "leadership_lost"  # a deposed leader stopped; the leader resumes


@dataclass(frozen=True)
class Event:
    """One entry of a window's journal."""

    window_id: str
    at: float
    kind: EventKind
    message: str
    rule: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None  # assigned by the store

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the API and the CLI."""
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "kind": self.kind.value,
            "rule": self.rule,
            "message": self.message,
            "data": dict(self.data),
        }


class ActionStatus(StrEnum):
    """Life of an entry in the action log."""

    CLAIMED = "claimed"  # the intent is recorded; the plan may or may not have started
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionRecord:
    """The action log's row: at most one per (window, action)."""

    window_id: str
    action: str
    status: ActionStatus
    token: int
    actor: str
    claimed_at: float
    finished_at: float | None = None
    detail: str | None = None
