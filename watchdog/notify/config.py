"""Notification settings: channels, routes, Slack users, escalation, delivery.

A section of :class:`~watchdog.settings.Settings` (``notify:`` in YAML,
``WATCHDOG_NOTIFY__*`` in the environment). A channel is on when its secret or URL is
set. Every base URL is a setting so tests point the real clients at local fakes.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from watchdog.foundation import secretcheck
from watchdog.foundation.durations import Duration

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def routed() -> tuple[str, ...]:
    """The channels routes may name (:data:`~watchdog.notify.kinds.CHANNEL_KINDS`)."""
    from watchdog.notify.kinds import CHANNEL_KINDS  # the channels import settings' types

    return tuple(name for name, kind in CHANNEL_KINDS.items() if kind.routed is not None)


class Route(BaseModel):
    """Send matching events to ``channels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[str] = Field(min_length=1)
    services: list[str] = Field(default_factory=lambda: ["*"])  # glob patterns
    min_severity: str = Field("info", pattern=r"^(info|warning|critical)$")

    @field_validator("channels")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        known = routed()
        unknown = [c for c in value if c not in known]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; expected one of {', '.join(known)}")
        return value

    def matches(self, service: str, severity: str) -> bool:
        """True when an event of ``service`` at ``severity`` takes this route."""
        if SEVERITY_RANK.get(severity, 0) < SEVERITY_RANK[self.min_severity]:
            return False
        return any(fnmatchcase(service, pattern) for pattern in self.services)


class NotifySettings(BaseModel):
    """Where people hear about windows, and who may press which Slack button."""

    model_config = ConfigDict(extra="forbid")

    # --- Slack app (bot token: messages with buttons; signing secret: interactions) ---
    slack_bot_token: SecretStr | None = None  # xoxb-…: messages with buttons, threads
    slack_signing_secret: SecretStr | None = None  # verifies button clicks (needs the bot token)
    slack_channel: str = "#deploys"  # where root messages go
    slack_api_url: str = "https://slack.com/api/"  # Slack Web API base (tests point it at a fake)
    oncall_ids: list[str] = Field(default_factory=list)  # may ack, hold, resume, roll back
    approver_ids: list[str] = Field(default_factory=list)  # may also approve risky rollbacks
    # --- Slack incoming webhook (no buttons) ---
    slack_webhook_url: SecretStr | None = None  # an incoming webhook: plain messages
    # --- generic webhook (JSON event, HMAC-SHA256 signature when a secret is set) ---
    webhook_url: str | None = None  # receives every event as JSON
    webhook_secret: SecretStr | None = None  # signs it (X-Watchdog-Signature)
    # --- PagerDuty Events API v2 ---
    pagerduty_routing_key: SecretStr | None = None  # Events API v2 integration key
    pagerduty_url: str = "https://events.pagerduty.com"  # Events API base
    # --- deploy markers (not routed): Grafana annotations, Sentry release deploys ---
    grafana_url: str | None = None  # e.g. https://grafana.example.com
    grafana_token: SecretStr | None = None  # a service account token (annotations:write)
    grafana_dashboard_uid: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,40}$"
    )  # pin annotations to this dashboard (else they are global)
    sentry_deploys: bool = True  # with WATCHDOG_SENTRY_ORG/_TOKEN set (project:releases)
    # --- routing: empty means every configured channel gets every event ---
    routes: list[Route] = Field(
        default_factory=list
    )  # channels by service glob and minimum severity
    # --- escalation and blindness ---
    escalate_after: Duration | None = 600.0  # a fired rule not acknowledged by then
    blind_after: int = Field(2, ge=1)  # failed polls in a row before "watchdog blind"
    # --- delivery ---
    timeout: Duration = 5.0  # per attempt
    backoff: Duration = 1.0  # first retry delay, doubled per attempt
    backoff_max: Duration = 300.0  # longest retry delay
    max_attempts: int = Field(20, ge=1)  # then the notification is journaled as failed
    poll: Duration = 1.0  # how often the worker looks for due retries

    @model_validator(mode="after")
    def _consistent(self) -> NotifySettings:
        if self.slack_signing_secret is not None and self.slack_bot_token is None:
            raise ValueError("slack_signing_secret (buttons) needs slack_bot_token too")
        if (self.grafana_url is None) != (self.grafana_token is None):
            raise ValueError("grafana_url and grafana_token go together")
        return self

    def enabled(self) -> list[str]:
        """Names of the channels that are configured."""
        from watchdog.notify.kinds import CHANNEL_KINDS

        kinds = CHANNEL_KINDS.values()
        return [k.name for k in kinds if k.routed is not None and k.routed(self)]

    def secrets(self) -> list[str]:
        """Every secret value of this section, for the log redactor."""
        return secretcheck.redactable(secretcheck.secret_fields(self))
