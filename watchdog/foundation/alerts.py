"""Alerts from Alertmanager: the record kept of each, and which windows they concern.

An alert occurrence is keyed by ``(fingerprint, starts_at)``: Alertmanager repeats a
group's alerts in every notification and HA peers each send the same group, so the
store upserts on that key and counts each distinct occurrence once. A ``resolved``
alert stays resolved: a late ``firing`` copy of the same occurrence (from a slower
peer) cannot bring it back; a new firing gets a new ``starts_at`` and a new row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from watchdog.foundation.regex import SafeRegex


class AlertStatus(StrEnum):
    """Alertmanager's two alert states."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert occurrence as the watchdog knows it (times are epoch seconds)."""

    fingerprint: str
    starts_at: float
    status: AlertStatus
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: float | None = None  # None while firing (Alertmanager sends the zero time)
    generator_url: str = ""
    receiver: str = ""
    first_seen: float = 0.0  # when the watchdog first received it
    last_seen: float = 0.0  # when the watchdog last received it
    notifications: int = 1  # how many deliveries carried it (all peers, all repeats)

    def active_at(self, at: float) -> bool:
        """Whether the alert was firing at ``at`` (as far as the watchdog knows)."""
        if self.starts_at > at:
            return False
        if self.status is AlertStatus.FIRING:
            return True
        return self.ends_at is not None and self.ends_at > at


@dataclass(frozen=True)
class AlertMatch:
    """Which alerts a rule counts for a window: label matchers and scoping.

    ``equal`` and ``regex`` are label name -> value / pattern; patterns are anchored
    (fully matched) like Prometheus and Alertmanager matchers. The window's service is
    compared with ``service_label`` and its environment with ``environment_label``
    (``None``: alerts of any environment count).
    """

    equal: Mapping[str, str] = field(default_factory=dict)
    regex: Mapping[str, SafeRegex] = field(default_factory=dict)
    service_label: str = "service"
    environment_label: str | None = "environment"

    def matches(self, labels: Mapping[str, str], service: str, environment: str) -> bool:
        """Whether an alert with ``labels`` belongs to this window and this rule."""
        if labels.get(self.service_label) != service:
            return False
        env = self.environment_label
        if env is not None and labels.get(env) != environment:
            return False
        if any(labels.get(k) != v for k, v in self.equal.items()):
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.regex.items())


TRUNCATED = "…[truncated]"


@dataclass(frozen=True)
class AlertLimits:
    """Size caps on what an alert may carry into the store.

    Longer values are cut and marked with :data:`TRUNCATED`, never refused: any 4xx
    makes Alertmanager drop the whole notification (a 2 MiB label was stored whole).
    """

    label_chars: int = 1024  # each label value
    annotation_chars: int = 4096  # each annotation value
    name_chars: int = 128  # each label or annotation name
    url_chars: int = 2048  # generatorURL
    receiver_chars: int = 256


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED


def _cut_all(values: Mapping[str, str], name_chars: int, value_chars: int) -> dict[str, str]:
    return {_cut(k, name_chars): _cut(v, value_chars) for k, v in values.items()}


def bounded(alert: Alert, limits: AlertLimits) -> tuple[Alert, bool]:
    """``alert`` within ``limits``, and whether anything had to be cut."""
    cut = replace(
        alert,
        labels=_cut_all(alert.labels, limits.name_chars, limits.label_chars),
        annotations=_cut_all(alert.annotations, limits.name_chars, limits.annotation_chars),
        generator_url=_cut(alert.generator_url, limits.url_chars),
        receiver=_cut(alert.receiver, limits.receiver_chars),
    )
    return cut, cut != alert
