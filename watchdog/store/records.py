"""The records the store ports speak in: a rule's points (and how many are kept), outbox
items and their status, rollback requests handed to the leader.

:mod:`watchdog.store.base` re-exports them beside the role Protocols.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from watchdog.foundation.model import Verdict

# A rule's series is bounded twice: the store keeps at most KEEP_POINTS + PRUNE_EVERY
# per (window, rule) (every PRUNE_EVERY-th write of a store prunes back to KEEP_POINTS,
# so the pruning scan is paid rarely) and hands back at most READ_POINTS, the newest.
KEEP_POINTS = 2000
PRUNE_EVERY = 50
READ_POINTS = 240


@dataclass(frozen=True)
class RulePoint:
    """One evaluation of one rule: when, the value judged (None: no data), the verdict;
    for a judge rule also its counts then (``watchdog/judge/evidence.py``)."""

    at: float
    value: float | None
    verdict: Verdict
    evidence: Mapping[str, float] | None = None

    @classmethod
    def of(
        cls,
        at: float,
        value: float | None,
        verdict: Verdict,
        evidence: Mapping[str, float] | None = None,
    ) -> RulePoint:
        """A point whose non-finite value becomes None (a gap in the graph)."""
        finite = value if value is not None and math.isfinite(value) else None
        return cls(at, finite, verdict, evidence)


class OutboxStatus(StrEnum):
    """Life of a notification in the outbox."""

    PENDING = "pending"  # stored, not yet delivered (maybe retrying)
    SENT = "sent"  # the channel accepted it
    FAILED = "failed"  # permanently refused, or retries exhausted (reported in the journal)


@dataclass(frozen=True)
class OutboxItem:
    """One notification of one event to one channel."""

    window_id: str
    channel: str
    event_seq: int
    payload: str  # the event as JSON, so delivery needs nothing else from the journal
    due_at: float
    created_at: float
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    id: int | None = None  # assigned by the store
    claimed_by: str | None = None  # the replica sending it (see Store.claim_notification)
    claimed_until: float | None = None  # epoch seconds; after that anyone may take it


@dataclass(frozen=True)
class RollbackRequest:
    """A manual rollback asked of a replica that does not lead, kept for the leader."""

    window_id: str
    actor: str
    reason: str | None
    approved_by: str | None
    at: float
