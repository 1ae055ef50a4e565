"""The webhook and PagerDuty channels against local receivers speaking their wire formats,
through the real httpx client: bodies, signatures, dedup keys, and how failures map to
transient or permanent."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.fakes import serve
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.slack import FakeSlack
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.notify.pagerduty import PagerDutyChannel
from watchdog.notify.render import Links
from watchdog.notify.slack import SlackApi, SlackChannel
from watchdog.notify.webhook import SlackWebhookChannel, WebhookChannel
from watchdog.store.sqlite import SqliteStore

pytestmark = pytest.mark.integration

WINDOW = Window("w1", Deployment("api", "prod", "v2", "v1"), WindowPhase.WATCHING, 1.0, 61.0, 1.0)
LINKS = Links("http://watchdog.example", "http://prom.example:9090")


def fired(seq: int = 7) -> Event:
    data = {
        "value": 0.2,
        "threshold": "> 0.05",
        "severity": "critical",
        "query": 'rate(x{a="b"}[1m])',
    }
    return Event(
        "w1", 5.0, EventKind.RULE_FIRING, "errors firing", rule="errors", data=data, seq=seq
    )


class Receiver:
    """Records requests; answers with the scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[tuple[int, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status, headers = self.statuses.pop(0) if self.statuses else (200, {})
        return web.Response(status=status, text="ok", headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner, url = await serve(app)
    yield r, f"{url}/hook"
    await runner.cleanup()


@dataclass
class Paging:
    """A fake PagerDuty, an in-memory store and a client, started for one test."""

    pd: FakePagerDuty
    store: SqliteStore
    client: httpx.AsyncClient


@pytest.fixture
async def paging() -> AsyncIterator[Paging]:
    pd = FakePagerDuty()
    await pd.start()
    store = SqliteStore(":memory:")
    await store.open()
    try:
        async with httpx.AsyncClient() as client:
            yield Paging(pd, store, client)
    finally:
        await store.close()
        await pd.stop()


async def test_generic_webhook_is_signed_over_timestamp_and_body(
    receiver: tuple[Receiver, str],
) -> None:
    r, url = receiver
    clock = FakeClock(1_800_000_123.0)
    async with httpx.AsyncClient() as client:
        await WebhookChannel(client, url, clock, secret="hook-secret-123").deliver(fired(), WINDOW)
    headers, body = r.requests[0]
    assert headers["X-Watchdog-Timestamp"] == "1800000123"
    expected = hmac.new(b"hook-secret-123", b"1800000123." + body, hashlib.sha256).hexdigest()
    assert headers["X-Watchdog-Signature"] == f"v1={expected}"
    data = json.loads(body)
    assert data["event"]["kind"] == "rule_firing" and data["window"]["phase"] == "watching"
    assert data["window"]["shadow"] is False
    assert data["severity"] == "critical" and data["text"] == "api v2 (prod): errors firing"


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (503, {}, TransientError, None),
        (429, {"Retry-After": "7"}, TransientError, 7.0),
        (404, {}, PermanentError, None),
    ],
)
async def test_webhook_failures_are_transient_or_permanent(
    receiver: tuple[Receiver, str],
    status: int,
    headers: dict[str, str],
    error: type[Exception],
    retry_after: float | None,
) -> None:
    r, url = receiver
    r.statuses = [(status, headers)]
    async with httpx.AsyncClient() as client:
        with pytest.raises(error) as caught:
            await WebhookChannel(client, url, FakeClock()).deliver(fired(), WINDOW)
    assert getattr(caught.value, "retry_after", None) == retry_after
    assert "X-Watchdog-Signature" not in r.requests[0][0]  # no secret, no signature


async def test_refused_connection_is_transient() -> None:
    async with httpx.AsyncClient() as client:
        channel = WebhookChannel(client, "http://127.0.0.1:9/hook", FakeClock())
        with pytest.raises(TransientError):
            await channel.deliver(fired(), WINDOW)


async def test_slack_incoming_webhook_has_text_and_no_buttons(
    receiver: tuple[Receiver, str],
) -> None:
    r, url = receiver
    async with httpx.AsyncClient() as client:
        await SlackWebhookChannel(client, url, LINKS).deliver(fired(), WINDOW)
    body: dict[str, Any] = json.loads(r.requests[0][1])
    assert body["text"] == "api v2 (prod): errors firing"
    assert all(b["type"] != "actions" for b in body["blocks"])
    links = body["blocks"][-1]["elements"][0]["text"]
    assert "http://prom.example:9090/graph?g0.expr=rate%28x%7Ba%3D%22b%22%7D%5B1m%5D%29" in links


async def test_pagerduty_one_incident_per_window_and_resolve_only_after_trigger(
    paging: Paging,
) -> None:
    pd = paging.pd
    channel = PagerDutyChannel(paging.client, paging.store, pd.url, "R" * 32, LINKS)
    passed = Event("w1", 9.0, EventKind.WINDOW_PASSED, "passed", seq=9)
    await channel.deliver(passed, WINDOW)
    assert pd.events == []  # nothing was triggered: nothing to resolve
    await channel.deliver(fired(1), WINDOW)
    await channel.deliver(fired(2), WINDOW)  # a retry or restart: same incident
    ack = Event("w1", 6.0, EventKind.ACKNOWLEDGED, "slack:U1: on it", seq=3)
    await channel.deliver(ack, WINDOW)
    await channel.deliver(passed, WINDOW)
    assert [e["event_action"] for e in pd.events] == [
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert pd.incidents == {"watchdog-w1": "resolved"}
    assert pd.events[0]["payload"]["source"] == "rollback-watchdog/api"


async def test_pagerduty_rejection_is_permanent(paging: Paging) -> None:
    channel = PagerDutyChannel(paging.client, paging.store, paging.pd.url, "", LINKS)  # blank key
    with pytest.raises(PermanentError, match="400"):
        await channel.deliver(fired(), WINDOW)


async def test_pagerduty_keeps_the_incident_open_until_the_recovery_is_judged(
    paging: Paging,
) -> None:
    pd = paging.pd
    confirming = WINDOW.with_phase(WindowPhase.CONFIRMING, 8.0)
    succeeded = Event(
        "w1",
        8.0,
        EventKind.ROLLBACK_SUCCEEDED,
        "rollback succeeded; watching v1",
        seq=4,
        data={"confirm_for": 300.0, "rules": ["errors"]},
    )
    ineffective = Event(
        "w1",
        308.0,
        EventKind.ROLLBACK_INEFFECTIVE,
        "rollback ineffective: errors still breaching",
        seq=5,
        data={"severity": "critical", "breaching": ["errors"]},
    )
    recovered = Event("w1", 308.0, EventKind.RECOVERED, "recovered: errors", seq=6)
    channel = PagerDutyChannel(paging.client, paging.store, pd.url, "R" * 32, LINKS)
    await channel.deliver(fired(1), WINDOW)
    await channel.deliver(succeeded, confirming)
    assert [e["event_action"] for e in pd.events] == ["trigger"]  # still open
    await channel.deliver(ineffective, WINDOW)
    assert pd.incidents == {"watchdog-w1": "triggered"}
    assert pd.events[-1]["payload"]["severity"] == "critical"
    assert "errors still breaching" in pd.events[-1]["payload"]["summary"]
    await channel.deliver(recovered, WINDOW)  # (another window's happy ending)
    assert [e["event_action"] for e in pd.events] == ["trigger", "trigger", "resolve"]


async def test_pagerduty_gets_one_plain_line_and_html_safe_json(tmp_path: Any) -> None:
    r = Receiver()
    r.statuses = [(202, {})]
    app = web.Application()
    app.router.add_post("/v2/enqueue", r.handle)  # PagerDuty's Events API v2 path
    runner, url = await serve(app)
    store = SqliteStore(str(tmp_path / "pd.db"))
    await store.open()
    typed = "rolled back: <!channel> <http://evil.example|runbook> &\nmore"
    event = Event("w1", 5.0, EventKind.ROLLBACK_FAILED, typed, data={"actor": "api (x)"}, seq=3)
    try:
        async with httpx.AsyncClient() as client:
            await PagerDutyChannel(client, store, url, "R" * 32, LINKS).deliver(event, WINDOW)
    finally:
        await store.close()
        await runner.cleanup()
    _, body = r.requests[0]
    assert b"<" not in body and b">" not in body and b"&" not in body
    payload = json.loads(body)["payload"]
    assert payload["summary"] == (
        "api v2 (prod): rolled back: <!channel> <http://evil.example|runbook> & more"
    )
    assert payload["custom_details"]["event"]["message"] == typed


class BlinkingThreads:
    """A store whose next ``set_thread`` calls fail as an outage does; the rest is real."""

    def __init__(self, store: SqliteStore, failures: int) -> None:
        self.store, self.failures, self.attempts = store, failures, 0

    async def get_thread(self, window_id: str, channel: str) -> str | None:
        return await self.store.get_thread(window_id, channel)

    async def set_thread(self, window_id: str, channel: str, ref: str) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise TransientError("PostgreSQL store unavailable: connection reset")
        await self.store.set_thread(window_id, channel, ref)


async def test_a_store_blip_after_the_send_does_not_send_it_again() -> None:
    """PostgreSQL going away just after PagerDuty (or Slack) took a message used to fail
    the delivery, so the outbox sent it again: two triggers, or two root messages in the
    channel. The thread is kept through the blip; the message goes once, and what
    follows it finds its thread."""
    pd, slack = FakePagerDuty(), FakeSlack()
    await pd.start()
    await slack.start()
    store = SqliteStore(":memory:")
    await store.open()
    clock = FakeClock()
    try:
        async with httpx.AsyncClient() as client:
            threads = BlinkingThreads(store, failures=2)
            await PagerDutyChannel(client, threads, pd.url, "R" * 32, LINKS, clock=clock).deliver(
                fired(1), WINDOW
            )
            assert threads.attempts == 3 and len(clock.slept) == 2  # waited out, not re-sent
            api = SlackApi(client, slack.token, slack.api_url)
            threads = BlinkingThreads(store, failures=2)
            channel = SlackChannel(api, threads, "#deploys", LINKS, clock=clock)
            await channel.deliver(fired(1), WINDOW)
            await channel.deliver(fired(2), WINDOW)  # an update: into the thread kept
        assert await store.get_thread(WINDOW.id, "pagerduty") == "watchdog-w1"
    finally:
        await store.close()
        await pd.stop()
        await slack.stop()
    assert [e["event_action"] for e in pd.events] == ["trigger"]
    assert len(slack.roots()) == 1 and slack.roots()[0].updates == 1


async def test_a_store_outage_past_patience_fails_the_delivery(paging: Paging) -> None:
    """Past the patience the outbox's own marks have, the delivery fails transiently
    (the worker retries it later): a store that never comes back is not waited on."""
    threads = BlinkingThreads(paging.store, failures=10_000)
    channel = PagerDutyChannel(
        paging.client, threads, paging.pd.url, "R" * 32, LINKS, clock=FakeClock()
    )
    with pytest.raises(TransientError, match="unavailable"):
        await channel.deliver(fired(1), WINDOW)
    assert len(paging.pd.events) == 1 and 3 <= threads.attempts < 100
