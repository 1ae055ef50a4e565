"""The Store port as role-sized Protocols (windows, rule states, events, actions, alerts,
outbox, threads) and the composite :class:`Store` that inherits them all; the records
they speak in are :mod:`watchdog.store.records`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.foundation.model import (
    ActionRecord,
    ActionStatus,
    Event,
    RuleState,
    Window,
    WindowPhase,
)
from watchdog.store.ephemeral import SeenOnce, Sessions
from watchdog.store.feed import JournalFeed, PhaseJournal, WindowChanges
from watchdog.store.records import (
    KEEP_POINTS,
    PRUNE_EVERY,
    READ_POINTS,
    OutboxItem,
    OutboxStatus,
    RollbackRequest,
    RulePoint,
)

# the records are re-exported: every port user imports them from here
__all__ = [
    "KEEP_POINTS",
    "PRUNE_EVERY",
    "READ_POINTS",
    "OutboxItem",
    "OutboxStatus",
    "RollbackRequest",
    "RulePoint",
]


class Lifecycle(Protocol):
    """Opening and closing: the composition root's concern only."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class WindowStore(Protocol):
    """Windows: one per deployment, their phase (compare-and-set) and baselines."""

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
        self, window_id: str, baselines: Mapping[str, Mapping[str, float]], *, at: float
    ) -> None:
        """Record the baselines captured at window start (a change: ``updated_at``)."""
        ...


class RuleStateStore(Protocol):
    """Per-(window, rule) state that survives a restart, and each evaluation's point."""

    async def save_rule_state(self, window_id: str, rule: str, state: RuleState) -> None:
        """Upsert one rule's state for a window."""
        ...

    async def load_rule_states(self, window_id: str) -> dict[str, RuleState]:
        """All rule states of a window, by rule name."""
        ...

    async def add_rule_point(self, window_id: str, rule: str, point: RulePoint) -> None:
        """Append one evaluation to the rule's series (bounded, see :data:`KEEP_POINTS`)."""
        ...

    async def list_rule_points(
        self, window_id: str, *, limit: int = READ_POINTS
    ) -> dict[str, list[RulePoint]]:
        """Each rule's newest ``limit`` points, oldest first, by rule name."""
        ...


class EventStore(Protocol):
    """The append-only events journal."""

    async def append_event(self, event: Event) -> Event:
        """Append to the journal; returns the event with its ``seq``."""
        ...

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        """A window's journal in order."""
        ...


class ActionStore(Protocol):
    """The action log: its unique key (window, action) is what makes a rollback happen
    at most once. :meth:`claim_action` succeeds for exactly one caller, ever. Fencing
    tokens (issued by :meth:`advance_fence` at each leader acquisition) are checked on
    the claim and on the outcome write, so a paused former leader holding a stale token
    can neither claim nor rewrite anything: it gets :class:`~watchdog.foundation.errors.FencedOut`.
    """

    async def store_time(self) -> float:
        """The store's own clock (epoch seconds): the one clock replicas share. SQLite
        is single-node: its clock is ours."""
        ...

    async def advance_fence(self, candidate: int) -> int:
        """Issue a fencing token for a new leader: above every token issued or accepted
        before, at least ``candidate`` (the Redis counter's), and recorded as the newest,
        so every older token is refused from now on."""
        ...

    async def claim_action(
        self, window_id: str, action: str, *, token: int, actor: str, at: float
    ) -> bool:
        """Record the intent to perform ``action`` on a window; True for the one winner.

        False when the action was already claimed; :class:`~watchdog.foundation.errors.FencedOut`
        (nothing written) when ``token`` is older than the newest the store has issued.
        """
        ...

    async def finish_action(
        self,
        window_id: str,
        action: str,
        *,
        status: ActionStatus,
        at: float,
        detail: str | None,
        token: int,
    ) -> None:
        """Record how a claimed action ended; :class:`~watchdog.foundation.errors.FencedOut`
        (nothing written) when ``token`` is older than the newest issued."""
        ...

    async def request_rollback(self, request: RollbackRequest) -> bool:
        """Keep a manual rollback for the leader to run; False if one already waits."""
        ...

    async def take_rollback_requests(self, *, limit: int = 100) -> list[RollbackRequest]:
        """Remove and return the waiting requests, oldest first."""
        ...

    async def get_action(self, window_id: str, action: str) -> ActionRecord | None:
        """The action log entry, or None."""
        ...


class AlertStore(Protocol):
    """The alerts Alertmanager sent, one row per occurrence."""

    async def record_alerts(self, alerts: list[Alert], *, at: float) -> int:
        """Upsert Alertmanager alerts on ``(fingerprint, starts_at)``, received at ``at``.

        Every delivery bumps ``notifications`` and ``last_seen``; a resolved occurrence
        stays resolved. Returns how many occurrences were new.
        """
        ...

    async def list_alerts(
        self,
        *,
        status: AlertStatus | None = None,
        active_since: float | None = None,
        started_since: float | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[Alert]:
        """Alerts, most recently started first; ``active_since`` keeps those still
        firing or resolved after that instant, ``started_since`` those started at or
        after it, ``labels`` those carrying every one of these label values (indexed:
        other services' alerts cost nothing)."""
        ...

    async def cap_alerts(self, keep: int) -> int:
        """Keep at most ``keep`` alerts, deleting the oldest resolved occurrences first
        (then the longest unseen firing ones); returns how many were deleted."""
        ...


class OutboxStore(Protocol):
    """The notification outbox: rows stored before they are sent."""

    async def enqueue_notifications(self, items: Sequence[OutboxItem]) -> int:
        """Store notifications before they are sent; an (channel, event) pair stored
        already is skipped. Returns how many were new."""
        ...

    async def pending_notifications(self, *, limit: int = 100) -> list[OutboxItem]:
        """Undelivered notifications, oldest first (due or not: order is per channel),
        claimed or not (a row another replica is sending holds back its successors)."""
        ...

    async def claim_notification(
        self, item_id: int, *, owner: str, now: float, until: float
    ) -> bool:
        """Take a pending notification for sending until ``until``; False when it is no
        longer pending or another owner's claim has not expired at ``now``."""
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
        """Record a delivery attempt's result and release the claim on it."""
        ...


class ThreadStore(Protocol):
    """What a channel keeps per window (a Slack root message, a PagerDuty trigger)."""

    async def get_thread(self, window_id: str, channel: str) -> str | None:
        """The reference a channel keeps for a window (e.g. a Slack message ts)."""
        ...

    async def set_thread(self, window_id: str, channel: str, ref: str) -> None:
        """Remember a channel's reference for a window (first one wins)."""
        ...


class RetentionStore(Protocol):
    """Retention (``watchdog/store/prune.py``): what the scheduled job deletes."""

    async def prune(self, *, before: float, windows: int, rows: int) -> dict[str, int]:
        """Delete one bounded batch of what is older than ``before``: at most ``windows``
        closed windows (with their journal, states, points, action log, outbox rows and
        threads) and ``rows`` delivered or dead outbox rows and alerts. Returns the rows
        deleted, by table."""
        ...


class Store(
    Lifecycle,
    WindowStore,
    RuleStateStore,
    EventStore,
    JournalFeed,
    WindowChanges,
    PhaseJournal,
    ActionStore,
    AlertStore,
    OutboxStore,
    ThreadStore,
    SeenOnce,
    Sessions,
    RetentionStore,
    Protocol,
):
    """All of durable state: SQLite and PostgreSQL pass one contract suite per role.

    Consumers name the role they use (``Dedup`` an :class:`ActionStore`, the journal an
    :class:`EventStore`); only the composition root holds the whole store. A new method
    goes into the role it belongs to, or a new role.
    """
