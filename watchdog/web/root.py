"""The aiohttp application as the composition root assembles it: the API, the status
page (and who may see it), the Alertmanager receiver (and its credentials), reload and
Slack buttons, with the open paths and body limits each needs. Called by :mod:`watchdog.app`
only; like :mod:`watchdog.wiring`, it turns Settings into parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from watchdog.actions.spec import plan_for
from watchdog.foundation.alerts import AlertLimits
from watchdog.foundation.clock import Clock
from watchdog.lifecycle.inbox import AlertInbox
from watchdog.lifecycle.reload import ReloadResult
from watchdog.lifecycle.windows import WindowService
from watchdog.settings import Settings
from watchdog.store.ephemeral import Sessions
from watchdog.web.alertmanager import (
    RECEIVER_PATH,
    Receiver,
    ReceiverAuth,
    add_alertmanager_routes,
)
from watchdog.web.reload import add_reload_routes
from watchdog.web.server import build_web_app
from watchdog.web.status import STATUS_PATHS, add_status_routes
from watchdog.web.status_auth import SessionLimits, StatusAuth, StatusSessions

if TYPE_CHECKING:
    from watchdog.web.slack import SlackInteractions


def status_auth(s: Settings) -> StatusAuth:
    """Who may look at the status page: API token, read-only token, or public."""
    tokens = [t.get_secret_value().encode() for t in (s.api_token, s.status_token) if t]
    secure = s.base_url.startswith("https://")
    return StatusAuth(tuple(tokens), public=s.status_public, secure_cookie=secure)


def receiver(s: Settings, inbox: AlertInbox) -> Receiver:
    """The Alertmanager webhook receiver with the credentials Alertmanager sends."""
    auth = ReceiverAuth(
        token=_secret_bytes(s.alertmanager_token),
        username=s.alertmanager_username.encode() if s.alertmanager_username else None,
        password=_secret_bytes(s.alertmanager_password),
    )
    limits = AlertLimits(
        label_chars=s.alertmanager_max_label_chars,
        annotation_chars=s.alertmanager_max_annotation_chars,
    )
    return Receiver(inbox, auth, max_inflight=s.alertmanager_max_inflight, limits=limits)


def web_app(
    s: Settings,
    windows: WindowService,
    registry: CollectorRegistry,
    receiver: Receiver,
    interactions: SlackInteractions | None,
    clock: Clock,
    ready: Callable[[], Awaitable[bool | str]],
    reload: Callable[[], Awaitable[ReloadResult]],
    sessions: Sessions,
) -> web.Application:
    """The aiohttp app: API, status page, Alertmanager receiver, reload, Slack buttons."""
    limits = SessionLimits(s.status_max_sessions, s.status_sign_ins_per_minute)
    status_sessions = StatusSessions(sessions, clock.now, s.status_session_ttl, limits)

    def extra_routes(app: web.Application) -> None:
        add_status_routes(
            app,
            windows,
            auth=status_auth(s),
            sessions=status_sessions,
            clock=clock.now,
            plans=lambda d: plan_for(d, s.plans, s.default_plan),
        )
        add_alertmanager_routes(app, receiver)
        add_reload_routes(app, reload)
        if interactions is not None:
            interactions.add_routes(app)

    return build_web_app(
        windows,
        api_token=s.api_token.get_secret_value() if s.api_token else None,
        base_url=s.base_url,
        max_body_bytes=s.max_body_bytes,
        registry=registry,
        ready=ready,
        clock=clock.now,
        extra_routes=extra_routes,
        open_paths=[
            *STATUS_PATHS,
            *([RECEIVER_PATH] if receiver.auth.configured else []),
            *([interactions.path] if interactions else []),
        ],
        body_limits=body_limits(s, interactions),
    )


def body_limits(s: Settings, interactions: SlackInteractions | None) -> dict[str, int]:
    """Routes whose body limit is not ``max_body_bytes``: the Alertmanager receiver's is
    larger (a 413 makes Alertmanager drop alerts), Slack's smaller (judged unsigned)."""
    limits = {RECEIVER_PATH: s.alertmanager_max_body_bytes}
    if interactions is not None:
        limits[interactions.path] = interactions.max_body
    return limits


def _secret_bytes(secret: SecretStr | None) -> bytes | None:
    return None if secret is None else secret.get_secret_value().encode()
