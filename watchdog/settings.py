"""The one typed Settings, read at the edge.

Sources, highest priority first: constructor arguments, ``WATCHDOG_*`` environment
variables, a ``.env`` file, then the YAML file named by ``WATCHDOG_CONFIG`` (where
rollback plans usually live, being nested). Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import json
import os
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from watchdog.actions.spec import Plan
from watchdog.foundation import safeyaml, secretcheck
from watchdog.foundation.durations import Duration
from watchdog.foundation.errors import ConfigError
from watchdog.notify.config import NotifySettings
from watchdog.sources.versions import WatchedService


class Settings(BaseSettings):
    """Everything the service can be told. Every duration accepts ``30m``, ``15s``, ``90``."""

    model_config = SettingsConfigDict(
        env_prefix="WATCHDOG_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
        hide_input_in_errors=True,  # errors must never echo a secret's value
    )

    # --- server -------------------------------------------------------------------
    listen_host: str = "127.0.0.1"  # address the HTTP server binds
    listen_port: int = Field(8080, ge=0, le=65535)  # its port (0: any free port)
    public_url: str | None = None  # how people reach this service (links in messages)
    api_token: SecretStr | None = None  # Bearer token for the API; required off loopback
    max_body_bytes: int = Field(1 << 20, ge=1024)  # largest request body the API reads
    # Connections (watchdog/web/connections.py): a request's head must arrive within this
    # of the connection opening (the next one: within the keep-alive timeout).
    http_header_timeout: Duration = Field(5.0, gt=0, le=300)
    http_body_timeout: Duration = Field(10.0, gt=0, le=600)  # its body, after the head
    http_keepalive_timeout: Duration = Field(15.0, gt=0, le=600)  # idle between requests
    http_max_keepalive_requests: int = Field(1000, ge=1)  # then `Connection: close`
    # At most this many connections, and always 256 below the open-file limit: beyond it
    # the oldest connection waiting for a request is closed, or (all busy) a 503.
    max_connections: int = Field(1000, ge=1, le=1_000_000)

    # --- rules and windows --------------------------------------------------------
    rules: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [Path("rules")]
    )  # rule files and directories
    window: Duration = 1800.0  # default window length
    tick: Duration = 1.0  # how often the scheduler calls tick()
    supersede: bool = True  # a new deploy of a service closes its open window
    # Shadow mode for every window opened (issue 15): rules evaluate, nothing acts on its
    # own, and the journal says what would have. Windows keep what they opened with.
    shadow: bool = False
    # ... or only the windows of these services (globs: `api`, `payments-*`).
    shadow_services: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # After a rollback, watch the restored version this long: the rules that fired
    # recover (`recovered`) or still breach (`rollback_ineffective`, escalated). A plan's
    # or a deployment's own `confirm_for` wins; 0 ends the window at `rolled_back`.
    confirm_for: Duration = Field(300.0, ge=0, le=86400)
    # More open windows than this: the API answers 429 and detection logs the refusal
    # (2,000 open windows made every evaluation 10-25x late).
    max_open_windows: int = Field(200, ge=1, le=100_000)
    # A window passes only when each rollback/approve rule was judged (had data and a
    # verdict) in at least this fraction of its evaluations; else it ends inconclusive
    # (watchdog/evaluation/coverage.py, docs/outcomes.md).
    judged_fraction: float = Field(0.5, gt=0, le=1)

    # --- store --------------------------------------------------------------------
    store_url: SecretStr = SecretStr("sqlite:///watchdog.db")  # or postgresql://…
    # Retention (watchdog/store/retention.py): closed windows with their journal, delivered
    # notifications and alerts older than this are pruned in the background, at most
    # retention_batch rows (and retention_batch // 50 windows) every retention_interval.
    retention: Duration = Field(30 * 86400.0, gt=0)
    retention_batch: int = Field(500, ge=1, le=100_000)  # rows per run (windows: a 50th)
    retention_interval: Duration = Field(60.0, gt=0)  # how often the pruning job runs

    # --- prometheus ---------------------------------------------------------------
    prometheus_url: str = "http://127.0.0.1:9090"  # the Prometheus every prometheus rule asks
    prometheus_token: SecretStr | None = None  # Bearer token sent to it
    prometheus_username: str | None = None  # basic auth (instead of user:key@ in the URL)
    prometheus_password: SecretStr | None = None
    prometheus_timeout: Duration = 5.0  # per query, including retries
    prometheus_retries: int = Field(1, ge=0, le=5)  # retries of a failed query, within the timeout
    prometheus_concurrency: int = Field(8, ge=1, le=256)  # queries in flight at once
    # One answer's bounds (watchdog/sources/promparse.py): past them the sample is an
    # error naming the count or size, never a stalled event loop.
    prometheus_max_series: int = Field(10_000, ge=1, le=1_000_000)
    prometheus_max_response_bytes: int = Field(8 << 20, ge=1 << 16, le=1 << 30)  # body, decoded
    # Only a stand-in: the scrape interval is read from Prometheus' targets API (by the
    # rule's `job`, else the longest), and this is used until Prometheus answers. A
    # window's ranges are clamped to its age rounded up to that grid, and confirmation
    # reads from one interval after the rollback (watchdog/sources/scrape_interval.py).
    prometheus_scrape_interval: Duration = Field(15.0, gt=0)
    # The label Prometheus puts the deployment's service in (deploy/prometheus.yml adds
    # it by relabelling); rule templates read it as {{ service_label }}.
    service_label: str = Field("service", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    # --- loki (`source: loki` rules) --------------------------------------------------
    loki_url: str | None = None  # e.g. http://loki:3100
    loki_tenant: str | None = None  # sent as X-Scope-OrgID (multi-tenant Loki)
    loki_token: SecretStr | None = None  # Bearer token, or …
    loki_username: str | None = None  # … basic auth (Grafana Cloud: the user id)
    loki_password: SecretStr | None = None  # its password (an API key)
    loki_timeout: Duration = 5.0  # per query

    # --- sentry (`source: sentry` rules, release deploy markers) -----------------------
    sentry_url: str = "https://sentry.io"  # or your self-hosted Sentry
    sentry_org: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$"
    )  # the organization slug
    sentry_token: SecretStr | None = None  # an auth token with event:read, project:releases
    sentry_timeout: Duration = 5.0  # per request

    # --- watched databases and caches: rules name a target, the DSN lives here ------
    # WATCHDOG_POSTGRES_TARGETS='{"app": "postgresql://watchdog@db:5432/app"}'
    postgres_targets: dict[str, SecretStr] = Field(default_factory=dict)
    # WATCHDOG_REDIS_TARGETS='{"cache": "redis://redis:6379/0"}'
    redis_targets: dict[str, SecretStr] = Field(default_factory=dict)

    # --- rollback -----------------------------------------------------------------
    plans: dict[str, Plan] = Field(
        default_factory=dict
    )  # named rollback plans (steps in order); YAML is easiest
    default_plan: str | None = None  # the plan a deployment that names none runs
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list
    )  # the only hosts http steps may call, and scrapes and probes whose host a label fills

    # --- platforms and deploy detection (issue 7) -------------------------------------
    render_api_url: str = "https://api.render.com/v1"  # a `render` step's API
    render_api_key: SecretStr | None = None  # Render API key (Bearer)
    detect: list[WatchedService] = Field(default_factory=list)  # version change opens a window

    # --- status page --------------------------------------------------------------
    # The page at / takes the API token, or this read-only one (which the API refuses);
    # either as a Bearer header or once as ?token=, traded for an HttpOnly cookie.
    status_token: SecretStr | None = None
    status_public: bool = False  # serve the (read-only) status page without any login
    # How long a status page sign-in lasts (server-side; DELETE /api/v1/status/sessions
    # ends every session at once).
    status_session_ttl: Duration = Field(12 * 3600.0, gt=0, le=30 * 86400)
    # Sessions kept per token, the oldest ending first (twice this in all); a session
    # also ends when the token that opened it is changed.
    status_max_sessions: int = Field(500, ge=1, le=100_000)
    status_sign_ins_per_minute: int = Field(30, ge=1, le=10_000)  # per token; beyond: 429

    # --- alertmanager receiver (POST /api/v1/alertmanager) ---------------------------
    # Credentials Alertmanager sends (http_config authorization / basic_auth); when
    # neither is set the receiver takes the API's bearer token like any API route.
    alertmanager_token: SecretStr | None = None
    alertmanager_username: str | None = None  # basic auth user Alertmanager sends
    alertmanager_password: SecretStr | None = None  # and its password
    # Larger than max_body_bytes: a notification can carry thousands of alerts, and a
    # 413 would make Alertmanager drop it (it retries only 5xx).
    alertmanager_max_body_bytes: int = Field(32 << 20, ge=1 << 20)
    alertmanager_max_inflight: int = Field(4, ge=1, le=256)  # more at once: 503, retried
    # Longer label / annotation values are truncated with a marker, never refused: a 4xx
    # would make Alertmanager drop the whole batch.
    alertmanager_max_label_chars: int = Field(1024, ge=64, le=1 << 20)
    alertmanager_max_annotation_chars: int = Field(4096, ge=64, le=1 << 20)  # each annotation value
    # Alerts kept in the store at most (besides retention by age): past it, the oldest
    # resolved occurrences are dropped first, so a storm cannot fill the disk.
    max_stored_alerts: int = Field(50_000, ge=100, le=10_000_000)

    # --- notifications: Slack, webhooks, PagerDuty, routes, escalation ---------------
    notify: NotifySettings = Field(default_factory=NotifySettings)

    # --- logs ---------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = (
        "info"  # debug also shows every evaluation and the scheduler
    )
    # json lines, console text for people, or auto: console when stderr is a terminal
    log_format: Literal["json", "console", "auto"] = "auto"

    # --- source outages (watchdog/rulefile/failmode.py) ------------------------------
    # fail_open: missing data never rolls back (rules are inconclusive, "watchdog blind"
    # is notified); fail_closed: missing data counts as a breach. Rules may override.
    missing_data: Literal["fail_open", "fail_closed"] = "fail_open"

    # --- high availability (watchdog/ha/lease.py) -----------------------------------
    # Set: replicas sharing a PostgreSQL store elect a leader through a Redis lease,
    # and only the leader acts. Unset: this single node always leads (no Redis needed).
    leader_redis_url: SecretStr | None = None
    leader_lease: Duration = Field(10.0, gt=0)  # renewed every third of it
    leader_key: str = "watchdog:leader"  # the Redis key of the lease
    # Times compared across replicas come from the store's clock (watchdog/ha/health.py);
    # a replica whose own clock is further off than this refuses leadership (/readyz).
    max_clock_skew: Duration = Field(5.0, gt=0)

    # --- crash safety (watchdog/pipeline/crashpoints.py, watchdog/pipeline/recovery.py) ------
    # TEST ONLY: SIGKILL the process at this named point (crash-safety tests). Unset,
    # as it always is in production, it does nothing; set, startup logs a warning.
    test_crash_at: str | None = None
    # TEST ONLY: seconds added to this process's wall clock (clock-skew tests). 0 always
    # in production; the store's clock corrects it, and a big one refuses leadership.
    test_clock_offset: float = Field(0.0, ge=-86400, le=86400)

    @field_validator("rules", "http_allowed_hosts", "shadow_services", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        # WATCHDOG_RULES=rules/api.yml,rules/db.yml reads naturally from the environment;
        # a JSON list works too.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_plan is not None and self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans")
        if self.api_token is None and not _is_loopback(self.listen_host):
            raise ValueError(
                f"listen_host {self.listen_host} is not loopback: set WATCHDOG_API_TOKEN"
            )
        for watched in self.detect:
            if watched.plan is not None and watched.plan not in self.plans:
                raise ValueError(
                    f"detect {watched.service}: plan {watched.plan!r} is not one of the plans"
                )
        if (self.alertmanager_username is None) != (self.alertmanager_password is None):
            raise ValueError("set both alertmanager_username and alertmanager_password, or neither")
        if (self.prometheus_username is None) != (self.prometheus_password is None):
            raise ValueError("set both prometheus_username and prometheus_password, or neither")
        scheme = self.store_url.get_secret_value().split(":", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("store_url must start with sqlite:/// or postgresql://")
        return self

    @model_validator(mode="after")
    def _strong_secrets(self) -> Settings:
        # An empty or example secret must never mean "authentication off" (issue 13).
        # Every SecretStr field is judged, so a secret added later is covered too.
        found = secretcheck.problems(secretcheck.secret_fields(self, self.notify))
        found += secretcheck.problems(secretcheck.url_credentials(self, self.notify))
        if found:
            raise ValueError("weak secrets: " + "; ".join(found))
        return self

    @property
    def base_url(self) -> str:
        """Where people reach the service."""
        return self.public_url or f"http://{self.listen_host}:{self.listen_port}"

    def secrets(self) -> list[str]:
        """Every secret value, for the log redactor: the same :func:`secret_fields` walk
        the strength check uses, so a secret setting added later is masked with no list
        to keep, and the password a plain URL setting carries (``user:key@``)."""
        found = secretcheck.redactable(secretcheck.secret_fields(self, self.notify))
        return found + secretcheck.url_secret_values(self, self.notify)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Add the YAML file named by WATCHDOG_CONFIG below env and .env."""
        sources = [init_settings, env_settings, dotenv_settings, file_secret_settings]
        config = os.environ.get("WATCHDOG_CONFIG")
        if config:
            if not Path(config).is_file():
                raise ConfigError([f"WATCHDOG_CONFIG={config}: no such file"])
            sources.append(BoundedYamlSource(settings_cls, yaml_file=Path(config)))
        return tuple(sources)


class BoundedYamlSource(YamlConfigSettingsSource):
    """The settings file read with the same size, depth and alias limits as rule files."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = safeyaml.load_file(Path(file_path))
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError([f"{file_path}:1: expected a mapping of settings"])
        return data


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
