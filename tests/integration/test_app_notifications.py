"""The one notification path, through the app as `App.build` wires it: journal → outbox →
delivery worker → channel, and `watchdog_notifications_total{channel,result}` counted at
delivery. Every request passes the httpx transport seam: the webhook is answered there,
Slack's are forwarded to the local fake Web API. The clock is fake; the worker is driven by hand."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.rules import rules
from tests.servers.slack import FakeSlack
from tests.world import app_settings, opened
from watchdog.app import Parts
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment


class Hook:
    """The webhook receiver behind the transport: answers the scripted statuses first;
    requests to the fake Slack (on loopback) are forwarded to it."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict[str, object]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            async with httpx.AsyncClient() as real:
                answer = await real.send(request)
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in ("content-type", "retry-after")
            }
            return httpx.Response(answer.status_code, content=answer.content, headers=kept)
        if request.url.host != "hooks.example":
            return httpx.Response(404)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(json.loads(request.content))
        return httpx.Response(status)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def built(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[tuple[Parts, Hook, FakeClock]]:
    hook, clock = Hook(), FakeClock()
    settings = app_settings(
        tmp_path,
        rules(tmp_path).http("errors", "http://api.internal/health", action="notify"),
        notify={
            "slack_bot_token": slack.token,
            "slack_api_url": slack.api_url,
            "webhook_url": "https://hooks.example/watchdog",
            "backoff": 2,
            "max_attempts": 2,
        },
        store_url=SecretStr("sqlite:///:memory:"),
    )
    async with opened(settings, clock=clock, transport=httpx.MockTransport(hook)) as parts:
        yield parts, hook, clock


def count(parts: Parts, channel: str, result: str) -> float:
    return (
        parts.registry.get_sample_value(
            "watchdog_notifications_total", {"channel": channel, "result": result}
        )
        or 0.0
    )


async def test_a_slack_and_a_webhook_delivery_are_counted(
    built: tuple[Parts, Hook, FakeClock], slack: FakeSlack
) -> None:
    parts, hook, _ = built
    await parts.windows.open_window(
        Deployment("api", "prod", "v2", "v1"), window_seconds=None, actor="ci"
    )
    assert await parts.notify.worker.run_once() == 2
    assert len(slack.roots()) == 1 and len(hook.bodies) == 1
    assert count(parts, "slack", "sent") == 1
    assert count(parts, "webhook", "sent") == 1
    assert count(parts, "slack", "retry") == count(parts, "webhook", "failed") == 0


async def test_retries_and_failures_are_counted_by_result(
    built: tuple[Parts, Hook, FakeClock], slack: FakeSlack
) -> None:
    parts, hook, clock = built
    slack.faults = ["500"]  # transient: retried after the backoff
    hook.statuses = [500, 500]  # max_attempts 2: the second failure gives up
    await parts.windows.open_window(
        Deployment("api", "prod", "v2", "v1"), window_seconds=None, actor="ci"
    )
    assert await parts.notify.worker.run_once() == 0
    assert count(parts, "slack", "retry") == count(parts, "webhook", "retry") == 1
    clock.advance(2)
    assert await parts.notify.worker.run_once() == 1
    assert count(parts, "slack", "sent") == 1
    assert count(parts, "webhook", "failed") == 1 and count(parts, "webhook", "sent") == 0
    assert hook.bodies == []
