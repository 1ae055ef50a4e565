"""Alert storage shared by both stores: the SQL (per dialect) and the row mapping.

The upsert keeps a ``resolved`` occurrence resolved (a late ``firing`` copy from a
slower HA peer cannot revive it) and counts every delivery in ``notifications``.
"""

from __future__ import annotations

import json
from typing import Any

from watchdog.alerts import Alert, AlertStatus
from watchdog.store.rows import Row, dumps

_INSERT = (
    "INSERT INTO alerts (fingerprint, starts_at, status, ends_at, labels, annotations,"
    " generator_url, receiver, first_seen, last_seen, notifications)"
)
_ON_CONFLICT = (
    " ON CONFLICT (fingerprint, starts_at) DO UPDATE SET"
    " status = CASE WHEN alerts.status = 'resolved' THEN 'resolved' ELSE excluded.status END,"
    " ends_at = CASE WHEN alerts.status = 'resolved' THEN alerts.ends_at"
    " ELSE excluded.ends_at END,"
    " labels = excluded.labels, annotations = excluded.annotations,"
    " generator_url = excluded.generator_url, receiver = excluded.receiver,"
    " last_seen = excluded.last_seen, notifications = alerts.notifications + 1"
)

SQLITE_UPSERT = _INSERT + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)" + _ON_CONFLICT
SQLITE_KNOWN = (
    "SELECT fingerprint, starts_at FROM alerts"
    " WHERE fingerprint IN (SELECT value FROM json_each(?))"
)
SQLITE_LIST = (
    "SELECT * FROM alerts WHERE (?1 IS NULL OR status = ?1)"
    " AND (?2 IS NULL OR status = 'firing' OR ends_at > ?2)"
    " ORDER BY starts_at DESC, fingerprint LIMIT ?3"
)

POSTGRES_UPSERT = _INSERT + " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)" + _ON_CONFLICT
POSTGRES_KNOWN = "SELECT fingerprint, starts_at FROM alerts WHERE fingerprint = ANY($1::text[])"
POSTGRES_LIST = (
    "SELECT * FROM alerts WHERE ($1::text IS NULL OR status = $1)"
    " AND ($2::double precision IS NULL OR status = 'firing' OR ends_at > $2)"
    " ORDER BY starts_at DESC, fingerprint LIMIT $3"
)


def alert_params(alert: Alert, at: float) -> tuple[Any, ...]:
    """Values for the upsert, received at ``at``."""
    return (
        alert.fingerprint,
        alert.starts_at,
        alert.status.value,
        alert.ends_at,
        dumps(alert.labels),
        dumps(alert.annotations),
        alert.generator_url,
        alert.receiver,
        at,
        at,
    )


def count_new(alerts: list[Alert], known: list[Row]) -> int:
    """How many distinct occurrences in ``alerts`` are not among the ``known`` rows."""
    seen = {(r["fingerprint"], float(r["starts_at"])) for r in known}
    keys = {(a.fingerprint, a.starts_at) for a in alerts}
    return len(keys - seen)


def fingerprints(alerts: list[Alert]) -> list[str]:
    """The distinct fingerprints of a batch."""
    return sorted({a.fingerprint for a in alerts})


def fingerprints_json(alerts: list[Alert]) -> str:
    """The distinct fingerprints as a JSON array (SQLite's ``json_each``)."""
    return json.dumps(fingerprints(alerts))


def alert_from_row(row: Row) -> Alert:
    """The alert an ``alerts`` row describes."""
    ends = row["ends_at"]
    return Alert(
        fingerprint=row["fingerprint"],
        starts_at=float(row["starts_at"]),
        status=AlertStatus(row["status"]),
        labels={str(k): str(v) for k, v in json.loads(row["labels"]).items()},
        annotations={str(k): str(v) for k, v in json.loads(row["annotations"]).items()},
        ends_at=None if ends is None else float(ends),
        generator_url=row["generator_url"],
        receiver=row["receiver"],
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
        notifications=int(row["notifications"]),
    )
