"""Mapping between database rows and model objects, shared by both stores.

Both drivers hand back rows indexable by column name (``sqlite3.Row``,
``asyncpg.Record``) and take JSON as text, so one set of converters serves both.
JSON has no NaN or infinities: non-finite floats are written as the strings
``"nan"``, ``"inf"`` and ``"-inf"``; baselines read them back as floats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import (
    ActionRecord,
    ActionStatus,
    Deployment,
    Event,
    EventKind,
    Verdict,
    Window,
    WindowPhase,
)
from watchdog.store.base import OutboxItem, OutboxStatus, RollbackRequest, RulePoint

# The rule_samples queries both stores share (placeholders differ: ? versus $n).
PRUNE_POINTS = (
    "DELETE FROM rule_samples WHERE window_id = {0} AND rule = {1} AND at < ("
    "SELECT at FROM rule_samples WHERE window_id = {0} AND rule = {1}"
    " ORDER BY at DESC LIMIT 1 OFFSET {2})"
)
NEWEST_POINTS = (
    "SELECT rule, at, value, verdict, evidence FROM (SELECT rule, at, value, verdict, evidence,"
    " ROW_NUMBER() OVER (PARTITION BY rule ORDER BY at DESC) AS n"
    " FROM rule_samples WHERE window_id = {0}) AS newest WHERE n <= {1} ORDER BY rule, at"
)


class Row(Protocol):
    """A result row whose columns can be read by name."""

    def __getitem__(self, key: str, /) -> Any:
        """The value of one column."""
        ...


def dumps(value: Any) -> str:
    """JSON text for a column; non-finite floats become strings, unknown types ``str``."""
    return json.dumps(_finite(value), sort_keys=True, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _loads(text: str | None) -> Any:
    return {} if text is None else json.loads(text)


def window_params(window: Window) -> tuple[Any, ...]:
    """Column values of a window, in the order the ``windows`` table declares them."""
    d = window.deployment
    return (
        window.id,
        d.service,
        d.environment,
        d.version,
        d.previous_version,
        dumps(d.labels),
        d.plan,
        window.phase.value,
        window.started_at,
        window.ends_at,
        window.updated_at,
        window.reason,
        dumps(window.baselines),
        bool(window.shadow),
        window.confirm_for,
    )


def decode_baselines(text: str | None) -> dict[str, dict[str, float]]:
    """Baselines from their JSON column (rule -> series key -> value)."""
    raw: dict[str, dict[str, float | str]] = _loads(text)
    return {rule: {k: float(v) for k, v in series.items()} for rule, series in raw.items()}


def window_from_row(row: Row) -> Window:
    """The window a ``windows`` row describes."""
    labels: dict[str, Any] = _loads(row["labels"])
    deployment = Deployment(
        service=row["service"],
        environment=row["environment"],
        version=row["version"],
        previous_version=row["previous_version"],
        labels={str(k): str(v) for k, v in labels.items()},
        plan=row["plan"],
    )
    return Window(
        id=row["id"],
        deployment=deployment,
        phase=WindowPhase(row["phase"]),
        started_at=float(row["started_at"]),
        ends_at=float(row["ends_at"]),
        updated_at=float(row["updated_at"]),
        baselines=decode_baselines(row["baselines"]),
        reason=row["reason"],
        shadow=bool(row["shadow"]),
        confirm_for=float(row["confirm_for"]),
    )


def event_params(event: Event) -> tuple[Any, ...]:
    """Values for ``(window_id, at, kind, rule, message, data)`` of an event."""
    return (
        event.window_id,
        event.at,
        event.kind.value,
        event.rule,
        event.message,
        dumps(event.data),
    )


def with_seq(event: Event, seq: int | None) -> Event:
    """The event as stored, carrying the ``seq`` the database gave it."""
    if seq is None:
        raise PermanentError("the store did not assign an event sequence number")
    return replace(event, seq=int(seq))


def event_from_row(row: Row) -> Event:
    """The event an ``events`` row describes."""
    return Event(
        window_id=row["window_id"],
        at=float(row["at"]),
        kind=EventKind(row["kind"]),
        message=row["message"],
        rule=row["rule"],
        data=_loads(row["data"]),
        seq=int(row["seq"]),
    )


def action_from_row(row: Row) -> ActionRecord:
    """The action log entry an ``actions`` row describes."""
    finished = row["finished_at"]
    return ActionRecord(
        window_id=row["window_id"],
        action=row["action"],
        status=ActionStatus(row["status"]),
        token=int(row["token"]),
        actor=row["actor"],
        claimed_at=float(row["claimed_at"]),
        finished_at=None if finished is None else float(finished),
        detail=row["detail"],
    )


def points_by_rule(found: list[Row]) -> dict[str, list[RulePoint]]:
    """Group ``rule_samples`` rows (ordered by rule, then time) by rule name."""
    out: dict[str, list[RulePoint]] = {}
    for row in found:
        value = row["value"]
        point = RulePoint(
            float(row["at"]),
            None if value is None else float(value),
            Verdict(row["verdict"]),
            point_evidence_in(row["evidence"]),
        )
        out.setdefault(str(row["rule"]), []).append(point)
    return out


def point_evidence_out(point: RulePoint) -> str | None:
    """A point's evidence as stored (JSON text, or NULL)."""
    return None if point.evidence is None else json.dumps(dict(point.evidence))


def point_evidence_in(text: str | None) -> dict[str, float] | None:
    """Inverse of :func:`point_evidence_out`; a row that does not parse has none."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


class PruneSchedule:
    """Says which writes of a (window, rule) series should also prune it: every n-th.

    Counted per store instance; a restart prunes on its first write of each series.
    Closed windows' counters are never needed again: past ``limit`` series all are
    dropped, which costs at most one extra prune per series still being written.
    """

    def __init__(self, every: int, limit: int = 10_000) -> None:
        self._every = every
        self._limit = limit
        self._writes: dict[tuple[str, str], int] = {}

    def due(self, key: tuple[str, str]) -> bool:
        """Count one write of ``key``; True on the first and every n-th after."""
        if len(self._writes) >= self._limit and key not in self._writes:
            self._writes.clear()
        n = self._writes.get(key, 0)
        self._writes[key] = n + 1
        return n % self._every == 0


def outbox_params(item: OutboxItem) -> tuple[Any, ...]:
    """Values for ``(window_id, channel, event_seq, payload, status, attempts, due_at,
    created_at, last_error)`` of an outbox row."""
    return (
        item.window_id,
        item.channel,
        item.event_seq,
        item.payload,
        item.status.value,
        item.attempts,
        item.due_at,
        item.created_at,
        item.last_error,
    )


def outbox_from_row(row: Row) -> OutboxItem:
    """The notification an ``outbox`` row describes."""
    return OutboxItem(
        window_id=row["window_id"],
        channel=row["channel"],
        event_seq=int(row["event_seq"]),
        payload=row["payload"],
        status=OutboxStatus(row["status"]),
        attempts=int(row["attempts"]),
        due_at=float(row["due_at"]),
        created_at=float(row["created_at"]),
        last_error=row["last_error"],
        id=int(row["id"]),
        claimed_by=row["claimed_by"],
        claimed_until=None if row["claimed_until"] is None else float(row["claimed_until"]),
    )


def request_params(request: RollbackRequest) -> tuple[Any, ...]:
    """Values for ``(window_id, actor, reason, approved_by, at)`` of a rollback request."""
    return (request.window_id, request.actor, request.reason, request.approved_by, request.at)


def request_from_row(row: Row) -> RollbackRequest:
    """The request a ``rollback_requests`` row describes."""
    return RollbackRequest(
        window_id=row["window_id"],
        actor=row["actor"],
        reason=row["reason"],
        approved_by=row["approved_by"],
        at=float(row["at"]),
    )
