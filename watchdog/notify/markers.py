"""Deploy markers: where the window's milestones show up on the team's dashboards.

Two outbox channels, delivered and retried by the same worker as the notifiers, but
not routed (routes pick who is *told*; a marker goes wherever it is configured):

- :class:`GrafanaAnnotations`: ``POST /api/annotations`` (service-account Bearer
  token). Window opened and rollback started/succeeded/failed are point annotations;
  the window passing is a region from its opening to its end. Tags: ``deploy`` or
  ``rollback``, the service, the version, the environment; ``dashboardUID`` when set.
- :class:`SentryDeploys`: ``POST /api/0/organizations/{org}/releases/{version}/deploys/``.
  The window opening is a deploy of the new release to the window's environment; a
  successful rollback is a deploy of the previous release. Sentry answers 404 when the
  release does not exist (it is created by the team's CI): permanent, journaled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from watchdog.foundation.model import Event, EventKind, Window
from watchdog.notify.channel import ChannelKind, ChannelParts, post_json

MARKERS = frozenset({"grafana", "sentry_deploys"})  # channel names
GRAFANA_KINDS = frozenset(
    {
        EventKind.WINDOW_OPENED,
        EventKind.ROLLBACK_STARTED,
        EventKind.ROLLBACK_SUCCEEDED,
        EventKind.ROLLBACK_FAILED,
        EventKind.WINDOW_PASSED,
        EventKind.WINDOW_INCONCLUSIVE,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
    }
)
# The ends of a window that stayed deployed: drawn as a region over the whole window.
_REGIONS = frozenset(
    {
        EventKind.WINDOW_PASSED,
        EventKind.WINDOW_INCONCLUSIVE,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
    }
)
SENTRY_KINDS = frozenset({EventKind.WINDOW_OPENED, EventKind.ROLLBACK_SUCCEEDED})
_TEXT = {
    EventKind.WINDOW_OPENED: "watch window opened",
    EventKind.ROLLBACK_STARTED: "rollback started",
    EventKind.ROLLBACK_SUCCEEDED: "rolled back",
    EventKind.ROLLBACK_FAILED: "rollback FAILED",
    EventKind.WINDOW_PASSED: "watch window passed",
    EventKind.WINDOW_INCONCLUSIVE: "watch window INCONCLUSIVE (not judged)",
    EventKind.WINDOW_EXPIRED_WHILE_HELD: "watch window EXPIRED WHILE HELD (a rule firing)",
    EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK: "watch window: shadow would have rolled back",
}


class GrafanaAnnotations:
    """Grafana annotations for a window's milestones."""

    name = "grafana"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        token: str,
        *,
        dashboard_uid: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._client, self._url = client, url.rstrip("/") + "/api/annotations"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._dashboard, self._timeout = dashboard_uid, timeout

    def wants(self, kind: EventKind) -> bool:
        """The window's opening and end, and the rollback's steps."""
        return kind in GRAFANA_KINDS

    async def deliver(self, event: Event, window: Window) -> None:
        """One annotation; Grafana answers 200 ``{"message": "Annotation added"}``."""
        body = annotation(event, window, self._dashboard)
        await post_json(self._client, self._url, "grafana", content=json.dumps(body).encode(),
                        headers=self._headers, limit=self._timeout)  # fmt: skip


def annotation(event: Event, window: Window, dashboard_uid: str | None) -> dict[str, Any]:
    """The annotation body for one milestone event."""
    d = window.deployment
    rollback = event.kind in (EventKind.ROLLBACK_STARTED, EventKind.ROLLBACK_SUCCEEDED,
                              EventKind.ROLLBACK_FAILED)  # fmt: skip
    tags = ["rollback" if rollback else "deploy", d.service, d.version, d.environment]
    text = f"{d.service} {d.version}: {_TEXT[event.kind]}"
    if rollback and d.previous_version:
        text += f" (to {d.previous_version})"
    body: dict[str, Any] = {
        "time": int(event.at * 1000),
        "tags": tags,
        "text": f"{text}. {event.message}"[:1000],
    }
    if event.kind in _REGIONS:
        body["time"], body["timeEnd"] = int(window.started_at * 1000), int(event.at * 1000)
    if dashboard_uid:
        body["dashboardUID"] = dashboard_uid
    return body


class SentryDeploys:
    """Sentry release deploys: the new release on opening, the old one after a rollback."""

    name = "sentry_deploys"

    def __init__(
        self, client: httpx.AsyncClient, url: str, org: str, token: str, *, timeout: float = 5.0
    ) -> None:
        self._client = client
        self._base = f"{url.rstrip('/')}/api/0/organizations/{quote(org, safe='')}/releases"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout

    def wants(self, kind: EventKind) -> bool:
        """A release reached the environment: the deploy, or the rollback's return."""
        return kind in SENTRY_KINDS

    async def deliver(self, event: Event, window: Window) -> None:
        """One deploy; Sentry answers 201 with it."""
        d = window.deployment
        release = d.version
        name = f"{d.service} {d.version} (rollback-watchdog window {window.id})"
        if event.kind is EventKind.ROLLBACK_SUCCEEDED:
            if not d.previous_version:
                return  # no known release to mark
            release, name = d.previous_version, f"rollback of {d.service} {d.version}"
        started = window.started_at if event.kind is EventKind.WINDOW_OPENED else event.at
        body = {
            "environment": d.environment,
            "name": name[:200],
            "dateStarted": _iso(started),
            "dateFinished": _iso(event.at),
        }
        url = f"{self._base}/{quote(release, safe='')}/deploys/"
        await post_json(self._client, url, "sentry deploys", content=json.dumps(body).encode(),
                        headers=self._headers, limit=self._timeout)  # fmt: skip


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _grafana(p: ChannelParts) -> GrafanaAnnotations | None:
    n = p.settings.notify
    if n.grafana_url is None or n.grafana_token is None:
        return None
    return GrafanaAnnotations(
        p.client, n.grafana_url, n.grafana_token.get_secret_value(),
        dashboard_uid=n.grafana_dashboard_uid, timeout=n.timeout,
    )  # fmt: skip


def _sentry_deploys(p: ChannelParts) -> SentryDeploys | None:
    s = p.settings
    if not (s.notify.sentry_deploys and s.sentry_org and s.sentry_token is not None):
        return None
    token = s.sentry_token.get_secret_value()
    return SentryDeploys(p.client, s.sentry_url, s.sentry_org, token, timeout=s.notify.timeout)


# Deploy markers are told every window's start and end, never routed.
CHANNELS = (
    ChannelKind("grafana", _grafana, None),
    ChannelKind("sentry_deploys", _sentry_deploys, None),
)
