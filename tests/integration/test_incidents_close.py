"""Incidents close, and the end states page the right people (issue 21 items 2 and 8),
through the app as `App.build` wires it: journal → outbox → delivery worker → the local
PagerDuty (Events API v2) and Slack (Web API) fakes. PagerDuty is routed
``min_severity: critical`` as the README's example does: the resolve still follows the
trigger. The clock is fake, sources are scripted; the worker is driven by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import PLAN, RecordingExecutor, ScriptedSource
from tests.rules import rules
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.slack import FakeSlack
from tests.world import app_settings, opened
from watchdog.app import Parts
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Sample, Window, WindowPhase


@dataclass
class Stack:
    parts: Parts
    clock: FakeClock
    source: ScriptedSource
    pd: FakePagerDuty
    slack: FakeSlack

    async def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds / 5)):
            await self.parts.engine.tick()
            await self.parts.engine.drain()
            self.clock.advance(5)
        while await self.parts.notify.worker.run_once():
            pass

    async def phase(self, window: Window) -> WindowPhase:
        got = await self.parts.store.get_window(window.id)
        assert got is not None
        return got.phase

    def actions(self) -> list[str]:
        return [e["event_action"] for e in self.pd.events]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    pd, slack = FakePagerDuty(), FakeSlack()
    await pd.start()
    await slack.start()
    clock, source = FakeClock(), ScriptedSource()
    notify: dict[str, Any] = {
        "pagerduty_routing_key": "R0utingKey-for-the-fake-1234567",
        "pagerduty_url": pd.url,
        "slack_bot_token": slack.token,
        "slack_api_url": slack.api_url,
        "oncall_ids": ["U0ONCALL"],
        "routes": [
            {"channels": ["pagerduty"], "min_severity": "critical"},
            {"channels": ["slack"]},
        ],
    }
    file = rules(tmp_path).prometheus(
        "errors", "errors", above=0.05, action="rollback", severity="critical"
    )
    settings = app_settings(
        tmp_path, file, plans={"default": PLAN}, default_plan="default", confirm_for=0,
        notify=notify,
    )  # fmt: skip
    seams = {
        "sources": {"prometheus": source},
        "executors": {"command": RecordingExecutor()},
        "transport": httpx.AsyncHTTPTransport(),  # the fakes listen on loopback
    }
    try:
        async with opened(settings, clock=clock, **seams) as parts:
            yield Stack(parts, clock, source, pd, slack)
    finally:
        await slack.stop()
        await pd.stop()


def deploy() -> Deployment:
    return Deployment("api", "production", "v2", previous_version="v1")


async def test_a_rollback_resolves_the_incident_its_firing_opened(stack: Stack) -> None:
    w = await stack.parts.windows.open_window(deploy(), window_seconds=300, actor="ci")
    stack.source.values["errors"] = Sample.of(0.5)
    await stack.run_for(10)
    assert await stack.phase(w) is WindowPhase.ROLLED_BACK
    # rollback_succeeded is severity info: the critical-only route alone would drop it
    assert stack.actions() == ["trigger", "resolve"]
    assert stack.pd.incidents == {f"watchdog-{w.id}": "resolved"}


async def test_a_hold_expiring_while_firing_pages_the_holder(stack: Stack) -> None:
    w = await stack.parts.windows.open_window(deploy(), window_seconds=60, actor="ci")
    await stack.parts.windows.hold(w.id, actor="slack:U0ALICE", reason="looking")
    stack.source.values["errors"] = Sample.of(0.5)
    await stack.run_for(70)
    assert await stack.phase(w) is WindowPhase.EXPIRED_WHILE_HELD
    last = stack.pd.events[-1]
    assert last["event_action"] == "trigger" and last["payload"]["severity"] == "critical"
    assert "expired while held" in last["payload"]["summary"]
    assert "held by slack:U0ALICE" in last["payload"]["summary"]
    [root] = stack.slack.roots()
    [reply] = [m for m in stack.slack.replies(root.ts) if "expired while held" in m.text]
    assert "<@U0ALICE>" in reply.text and "<@U0ONCALL>" in reply.text


async def test_a_window_that_watched_nothing_says_so_to_people(stack: Stack) -> None:
    w = await stack.parts.windows.open_window(deploy(), window_seconds=60, actor="ci")
    stack.source.values["errors"] = Sample.failed("cannot connect to Prometheus at x")
    await stack.run_for(70)
    assert await stack.phase(w) is WindowPhase.INCONCLUSIVE
    [root] = stack.slack.roots()
    texts = [m.text for m in stack.slack.replies(root.ts)]
    assert any("watched nothing for 1m" in t and "check Prometheus" in t for t in texts)
    assert stack.pd.events == []  # a warning: the critical-only route keeps it off the pager
    closed = stack.parts.registry.get_sample_value(
        "watchdog_windows_closed_total", {"outcome": "inconclusive"}
    )
    assert closed == 1
