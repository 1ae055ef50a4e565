"""PagerDuty Events API v2: trigger, acknowledge, resolve, one incident per window.

``dedup_key`` is ``watchdog-<window id>``: retries and restarts re-send the same key, so
PagerDuty never opens a second incident for one deployment.
"""

from __future__ import annotations

import httpx

from watchdog.foundation.clock import Clock, SystemClock
from watchdog.foundation.model import Event, EventKind, Window
from watchdog.notify import render
from watchdog.notify.channel import ChannelKind, ChannelParts, keep_thread, post_json
from watchdog.store.base import ThreadStore

TRIGGER = frozenset(
    {
        EventKind.RULE_FIRING,
        EventKind.APPROVAL_NEEDED,
        EventKind.ROLLBACK_FAILED,
        EventKind.ESCALATED,
        EventKind.ROLLBACK_INEFFECTIVE,
        # a held window expired with a rule firing: pages (the summary names the holder)
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        # the deploy went unverified: "watched nothing for 30m: check Prometheus"
        EventKind.WINDOW_INCONCLUSIVE,
    }
)
ACKNOWLEDGE = frozenset({EventKind.ACKNOWLEDGED})
RESOLVE = frozenset(
    {
        EventKind.ROLLBACK_SUCCEEDED,  # unless its recovery is still to be confirmed
        EventKind.RECOVERED,
        EventKind.WINDOW_PASSED,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,  # shadow: nothing ran, nothing to do
        EventKind.WINDOW_ABORTED,
        EventKind.WINDOW_SUPERSEDED,
    }
)
# What closes an incident (or says someone is on it): sent whatever a route's
# min_severity, since a resolve must follow its trigger (notify/outbox.py).
CLOSING = ACKNOWLEDGE | RESOLVE
_PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def dedup_key(window: Window) -> str:
    """The one incident key of a window."""
    return f"watchdog-{window.id}"


class PagerDutyChannel:
    """Sends trigger/acknowledge/resolve to ``{base}/v2/enqueue``."""

    name = "pagerduty"

    def __init__(
        self,
        client: httpx.AsyncClient,
        store: ThreadStore,
        base_url: str,
        routing_key: str,
        links: render.Links,
        timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._client = client
        self._store = store
        self._url = base_url.rstrip("/") + "/v2/enqueue"
        self._key = routing_key
        self._links = links
        self._timeout = timeout

    def wants(self, kind: EventKind) -> bool:
        """Only what opens, acknowledges or closes an incident."""
        return kind in TRIGGER or kind in ACKNOWLEDGE or kind in RESOLVE

    async def deliver(self, event: Event, window: Window) -> None:
        """One Events v2 request; PagerDuty answers 202 when it accepted it.

        Acknowledge and resolve are only sent for a window that triggered an incident.
        """
        action = _action(event.kind)
        triggered = await self._store.get_thread(window.id, self.name) is not None
        if action != "trigger" and not triggered:
            return
        if event.kind is EventKind.ROLLBACK_SUCCEEDED and event.data.get("confirm_for"):
            return  # the incident stays open until the recovery is confirmed (or not)
        body: dict[str, object] = {
            "routing_key": self._key,
            "event_action": action,
            "dedup_key": dedup_key(window),
        }
        if body["event_action"] == "trigger":
            body["payload"] = {
                "summary": render.plain_line(window, event, 1024),
                "source": f"rollback-watchdog/{window.deployment.service}",
                "severity": _PD_SEVERITY[render.severity(event)],
                "component": window.deployment.service,
                "group": window.deployment.environment,
                "custom_details": {"event": render.event_json(event)},
            }
            body["links"] = [{"href": self._links.deployment(window), "text": "deployment"}]
        await post_json(
            self._client,
            self._url,
            "pagerduty",
            content=render.safe_json(body),
            limit=self._timeout,
        )
        if action == "trigger":
            await keep_thread(self._store, self._clock, window.id, self.name, dedup_key(window))


def _action(kind: EventKind) -> str:
    if kind in ACKNOWLEDGE:
        return "acknowledge"
    if kind in RESOLVE:
        return "resolve"
    return "trigger"


def _build(p: ChannelParts) -> PagerDutyChannel | None:
    n = p.settings.notify
    if n.pagerduty_routing_key is None:
        return None
    key = n.pagerduty_routing_key.get_secret_value()
    return PagerDutyChannel(
        p.client, p.store, n.pagerduty_url, key, p.links, n.timeout, clock=p.clock
    )


CHANNELS = (ChannelKind("pagerduty", _build, lambda n: n.pagerduty_routing_key is not None),)
