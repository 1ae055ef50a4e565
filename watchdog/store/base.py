"""The Store port: windows, rule states, the events journal and the action log."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from watchdog.model import (
    ActionRecord,
    ActionStatus,
    Event,
    RuleState,
    Window,
    WindowPhase,
)


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


class Store(Protocol):
    """Durable state. Two implementations pass one test suite: SQLite and PostgreSQL.

    The action log's unique key (window, action) is what makes a rollback happen at most
    once: :meth:`claim_action` succeeds for exactly one caller, ever. Fencing tokens
    (issued by the leader lease) are checked on the same write, so a paused former
    leader holding a stale token cannot claim anything.
    """

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def insert_window(self, window: Window) -> None:
        """Store a new window."""
        ...

    async def get_window(self, window_id: str) -> Window | None:
        """One window, or None."""
        ...

    async def list_windows(
        self,
        *,
        service: str | None = None,
        environment: str | None = None,
        phases: Collection[WindowPhase] | None = None,
        limit: int = 100,
    ) -> list[Window]:
        """Windows, newest first, filtered."""
        ...

    async def set_phase(
        self,
        window_id: str,
        phase: WindowPhase,
        *,
        at: float,
        reason: str | None = None,
        expected: Collection[WindowPhase] | None = None,
    ) -> bool:
        """Move a window to ``phase`` if it is currently in one of ``expected``.

        Returns False (and changes nothing) when the window is in another phase: the
        compare-and-set that keeps concurrent transitions honest.
        """
        ...

    async def set_baselines(
        self, window_id: str, baselines: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Record the baselines captured at window start."""
        ...

    async def save_rule_state(self, window_id: str, rule: str, state: RuleState) -> None:
        """Upsert one rule's state for a window."""
        ...

    async def load_rule_states(self, window_id: str) -> dict[str, RuleState]:
        """All rule states of a window, by rule name."""
        ...

    async def append_event(self, event: Event) -> Event:
        """Append to the journal; returns the event with its ``seq``."""
        ...

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        """A window's journal in order."""
        ...

    async def claim_action(
        self, window_id: str, action: str, *, token: int, actor: str, at: float
    ) -> bool:
        """Record the intent to perform ``action`` on a window; True for the one winner.

        False when the action was already claimed, or when ``token`` is older than the
        newest fencing token the store has seen.
        """
        ...

    async def finish_action(
        self, window_id: str, action: str, *, status: ActionStatus, at: float, detail: str | None
    ) -> None:
        """Record how a claimed action ended."""
        ...

    async def get_action(self, window_id: str, action: str) -> ActionRecord | None:
        """The action log entry, or None."""
        ...

    # --- the notification outbox -------------------------------------------------
    async def enqueue_notifications(self, items: Sequence[OutboxItem]) -> int:
        """Store notifications before they are sent; an (channel, event) pair stored
        already is skipped. Returns how many were new."""
        ...

    async def pending_notifications(self, *, limit: int = 100) -> list[OutboxItem]:
        """Undelivered notifications, oldest first (due or not: order is per channel)."""
        ...

    async def update_notification(
        self,
        item_id: int,
        *,
        status: OutboxStatus,
        attempts: int,
        due_at: float,
        error: str | None,
    ) -> None:
        """Record a delivery attempt's result."""
        ...

    async def get_thread(self, window_id: str, channel: str) -> str | None:
        """The reference a channel keeps for a window (e.g. a Slack message ts)."""
        ...

    async def set_thread(self, window_id: str, channel: str, ref: str) -> None:
        """Remember a channel's reference for a window (first one wins)."""
        ...
