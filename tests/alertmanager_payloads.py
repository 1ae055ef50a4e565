"""Alertmanager webhook payloads (version 4) exactly as Alertmanager 0.25 sends them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(ts: float) -> str:
    """Go's RFC 3339 with nanoseconds, as Alertmanager renders times."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}123Z"


def alert(
    labels: dict[str, str],
    *,
    starts_at: float,
    status: str = "firing",
    ends_at: float | None = None,
) -> dict[str, Any]:
    """One alert; the fingerprint is derived from the labels as Alertmanager does."""
    canon = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{labels.get('alertname', '?')} is firing"},
        "startsAt": rfc3339(starts_at),
        "endsAt": ZERO_TIME if ends_at is None else rfc3339(ends_at),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": hashlib.sha256(canon.encode()).hexdigest()[:16],
    }


def payload(alerts: list[dict[str, Any]], *, status: str | None = None) -> dict[str, Any]:
    """A notification carrying ``alerts`` (one group)."""
    first = alerts[0]["labels"] if alerts else {}
    group = {"alertname": first.get("alertname", "")}
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}/{rollback="true"}:{alertname="' + group["alertname"] + '"}',
        "truncatedAlerts": 0,
        "status": status or ("firing" if firing else "resolved"),
        "receiver": "rollback-watchdog",
        "groupLabels": group,
        "commonLabels": dict(first),
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def many(count: int, *, service: str, environment: str, starts_at: float) -> dict[str, Any]:
    """A payload of ``count`` distinct alerts (one instance label each)."""
    alerts = [
        alert(
            {
                "alertname": "InstanceDown",
                "service": service,
                "environment": environment,
                "instance": f"10.0.{i // 250}.{i % 250}:9100",
                "job": "node",
                "severity": "warning",
            },
            starts_at=starts_at,
        )
        for i in range(count)
    ]
    return payload(alerts)
