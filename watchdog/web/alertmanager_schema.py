"""Wire models of the Alertmanager receiver: the webhook payload (version 4) in, the
recorded alerts out.

The payload is Alertmanager's ``notify/webhook`` message: ``version``, ``groupKey``,
``truncatedAlerts``, ``status``, ``receiver``, ``groupLabels``, ``commonLabels``,
``commonAnnotations``, ``externalURL`` and ``alerts[]`` (``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``generatorURL``, ``fingerprint``). Unknown
extra fields are ignored (a newer Alertmanager must not be refused with a 4xx, which
it would drop); the fields the watchdog relies on are required.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.foundation.model import iso

_IN = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def epoch(value: datetime) -> float | None:
    """Epoch seconds; ``None`` for Go's zero time (``0001-01-01``: "not set")."""
    if value.year <= 1:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class WebhookAlert(BaseModel):
    """One alert of a notification."""

    model_config = _IN

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(min_length=1, max_length=128)


class WebhookPayload(BaseModel):
    """A notification for one alert group (webhook payload version 4)."""

    model_config = _IN

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[WebhookAlert]

    def to_alerts(self) -> list[Alert]:
        """The alerts as the watchdog records them (occurrences without a start are kept
        at epoch 0, so they still deduplicate on their fingerprint)."""
        return [
            Alert(
                fingerprint=a.fingerprint,
                starts_at=epoch(a.starts_at) or 0.0,
                status=AlertStatus(a.status),
                labels=a.labels,
                annotations=a.annotations,
                ends_at=epoch(a.ends_at) if a.ends_at is not None else None,
                generator_url=a.generator_url,
                receiver=self.receiver,
            )
            for a in self.alerts
        ]


class AlertQuery(BaseModel):
    """Filters of ``GET /api/v1/alerts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["firing", "resolved"] | None = None
    limit: int = Field(100, ge=1, le=1000)


class AlertOut(BaseModel):
    """A recorded alert occurrence."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str | None
    ends_at: str | None
    generator_url: str
    receiver: str
    first_seen: str | None
    last_seen: str | None
    notifications: int = Field(description="deliveries that carried it (repeats, HA peers)")

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        """Render an alert for the wire."""
        return cls(
            fingerprint=alert.fingerprint,
            status=alert.status.value,
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            starts_at=iso(alert.starts_at),
            ends_at=iso(alert.ends_at),
            generator_url=alert.generator_url,
            receiver=alert.receiver,
            first_seen=iso(alert.first_seen),
            last_seen=iso(alert.last_seen),
            notifications=alert.notifications,
        )


class AlertListOut(BaseModel):
    """``GET /api/v1/alerts``."""

    alerts: list[AlertOut]
