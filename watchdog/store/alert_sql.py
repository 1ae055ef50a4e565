"""Alert storage shared by both stores: the SQL (per dialect) and the row mapping.

The upsert keeps a ``resolved`` occurrence resolved (a late ``firing`` copy from a
slower HA peer cannot revive it) and counts every delivery in ``notifications``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.store.rows import Row

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
    "SELECT fingerprint, starts_at, status FROM alerts"
    " WHERE fingerprint IN (SELECT value FROM json_each(?))"
)
SQLITE_SEEN_AGAIN = (
    "UPDATE alerts SET last_seen = ?1, notifications = notifications + 1"
    " WHERE (fingerprint, starts_at) IN"
    " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))"
)
SQLITE_LIST = (
    "SELECT * FROM alerts WHERE (?1 IS NULL OR status = ?1)"
    " AND (?2 IS NULL OR status = 'firing' OR ends_at > ?2)"
    " AND (?3 IS NULL OR starts_at >= ?3){labels}"
    " ORDER BY starts_at DESC, fingerprint LIMIT ?4"
)
SQLITE_LABELS = "INSERT OR IGNORE INTO alert_labels (fingerprint, name, value) VALUES (?, ?, ?)"
# Oldest resolved first (status = 'firing' sorts them last), then the oldest firing.
SQLITE_CAP = (
    "DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts"
    " ORDER BY status = 'firing', last_seen"
    " LIMIT max(0, (SELECT count(*) FROM alerts) - ?1))"
)
SQLITE_ORPHAN_LABELS = (
    "DELETE FROM alert_labels WHERE fingerprint IN (SELECT DISTINCT l.fingerprint"
    " FROM alert_labels AS l WHERE NOT EXISTS"
    " (SELECT 1 FROM alerts AS a WHERE a.fingerprint = l.fingerprint) LIMIT ?1)"
)

POSTGRES_UPSERT = _INSERT + " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1)" + _ON_CONFLICT
POSTGRES_KNOWN = (
    "SELECT fingerprint, starts_at, status FROM alerts WHERE fingerprint = ANY($1::text[])"
)
POSTGRES_SEEN_AGAIN = (
    "UPDATE alerts SET last_seen = $1, notifications = alerts.notifications + 1"
    " FROM unnest($2::text[], $3::double precision[]) AS k (fp, st)"
    " WHERE alerts.fingerprint = k.fp AND alerts.starts_at = k.st"
)
POSTGRES_LIST = (
    "SELECT * FROM alerts WHERE ($1::text IS NULL OR status = $1)"
    " AND ($2::double precision IS NULL OR status = 'firing' OR ends_at > $2)"
    " AND ($3::double precision IS NULL OR starts_at >= $3){labels}"
    " ORDER BY starts_at DESC, fingerprint LIMIT $4"
)
POSTGRES_LABELS = (
    "INSERT INTO alert_labels (fingerprint, name, value)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING"
)
POSTGRES_CAP = (
    "DELETE FROM alerts WHERE (fingerprint, starts_at) IN (SELECT fingerprint, starts_at"
    " FROM alerts ORDER BY status = 'firing', last_seen"
    " LIMIT GREATEST(0, (SELECT count(*) FROM alerts) - $1))"
)
POSTGRES_ORPHAN_LABELS = (
    "DELETE FROM alert_labels WHERE fingerprint IN (SELECT DISTINCT l.fingerprint"
    " FROM alert_labels AS l WHERE NOT EXISTS"
    " (SELECT 1 FROM alerts AS a WHERE a.fingerprint = l.fingerprint) LIMIT $1)"
)


def list_sql(template: str, labels: Mapping[str, str], mark: str) -> tuple[str, list[str]]:
    """``template`` (a ``*_LIST``) keeping only alerts carrying every label of ``labels``
    (found through the ``alert_labels`` index), and the extra parameters, in order.
    ``mark`` is the dialect's placeholder prefix (``?`` or ``$``), numbered after 4."""
    if not labels:
        return template.format(labels=""), []
    pairs, params = [], []
    for i, (name, value) in enumerate(sorted(labels.items())):
        pairs.append(f"(name = {mark}{5 + 2 * i} AND value = {mark}{6 + 2 * i})")
        params += [name, value]
    # Only numbered placeholders and a count are formatted in; values are parameters.
    having = f" GROUP BY fingerprint HAVING count(*) = {len(labels)})"
    clause = " AND fingerprint IN (SELECT fingerprint FROM alert_labels WHERE "
    clause += " OR ".join(pairs) + having
    return template.format(labels=clause), params


def label_rows(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    """``(fingerprint, name, value)`` for every label of ``alerts``, once each."""
    return sorted({(a.fingerprint, k, v) for a in alerts for k, v in a.labels.items()})


def alert_params(alert: Alert, at: float) -> tuple[Any, ...]:
    """Values for the upsert, received at ``at``."""
    return (
        alert.fingerprint,
        alert.starts_at,
        alert.status.value,
        alert.ends_at,
        # str -> str maps: plain JSON, no need for rows.dumps' non-finite float care.
        json.dumps(alert.labels, sort_keys=True),
        json.dumps(alert.annotations, sort_keys=True),
        alert.generator_url,
        alert.receiver,
        at,
        at,
    )


Key = tuple[str, float]


@dataclass(frozen=True)
class Batch:
    """A delivery split by what the store must do with each alert."""

    new: int  # distinct occurrences never seen before
    upsert: list[Alert]  # new ones and firing -> resolved changes: written whole
    seen_again: list[Key]  # unchanged repeats: only last_seen and notifications move


def split(alerts: list[Alert], known: list[Row]) -> Batch:
    """Sort a delivery against the ``known`` rows (fingerprint, starts_at, status).

    Repeats of an unchanged alert are most of what Alertmanager sends (every group
    interval, from every peer); touching two columns of those keeps a delivery of
    thousands of alerts cheap.
    """
    status = {(r["fingerprint"], float(r["starts_at"])): r["status"] for r in known}
    upsert: list[Alert] = []
    again: dict[Key, None] = {}
    for alert in alerts:
        key = (alert.fingerprint, alert.starts_at)
        if status.get(key) in (alert.status.value, AlertStatus.RESOLVED.value):
            again[key] = None  # same status, or resolved already (which sticks)
        else:
            upsert.append(alert)
    new = len({(a.fingerprint, a.starts_at) for a in upsert} - set(status))
    return Batch(new, upsert, list(again))


def keys_json(keys: list[Key]) -> str:
    """Keys as a JSON array of ``[fingerprint, starts_at]`` pairs (SQLite)."""
    return json.dumps([list(k) for k in keys])


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
