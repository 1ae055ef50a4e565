"""Shadow mode and recovery confirmation with a real `watchdog serve`.

The demo app (examples/demoapp.py) is the watched service and the rollback target: it
records every POST /rollback it receives, heals its faults on rollback unless they are
``external`` (not the deploy's doing). Slack and PagerDuty are local fakes speaking
their wire formats, in this test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import DemoApp, WatchdogServer, start_demo_app, start_watchdog
from tests.rules import Rules, rules
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.slack import FakeSlack
from tests.world import api, config_file, paging, until

pytestmark = pytest.mark.e2e

ONCALL = "U0ONCALL1"


def health_rules(home: Path, port: int, *, shadow: bool) -> Rules:
    """The demo's /health rolls back when it fails for 1s (or only says so, in shadow)."""
    url = f"http://127.0.0.1:{port}/health"
    file = rules(home).group("demo", "500ms")
    more = {"shadow": True} if shadow else {}
    return file.http("health", url, for_="1s", action="rollback", severity="critical", **more)


@dataclass
class Stack:
    demo: DemoApp
    server: WatchdogServer
    slack: FakeSlack
    pagerduty: FakePagerDuty
    rules: Path

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await api(self.server.url, method, path, token=self.server.token, **kw)

    async def open_window(self, **extra: Any) -> str:
        body = {
            "service": "demo",
            "environment": "e2e",
            "version": "v2",
            "previous_version": "v1",
            "labels": {"port": str(self.demo.port)},
            "window": "5m",
            **extra,
        }
        response = await self.api("POST", "/api/v1/deployments", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def detail(self, window_id: str) -> dict[str, Any]:
        return dict((await self.api("GET", f"/api/v1/deployments/{window_id}")).json())

    async def kinds(self, window_id: str) -> list[str]:
        return [e["kind"] for e in (await self.detail(window_id))["events"]]

    async def rollback_calls(self, window_id: str) -> list[dict[str, Any]]:
        calls = await asyncio.to_thread(self.demo.rollback_calls)
        key = "Idempotency-Key"
        return [c for c in calls if str(c["headers"].get(key, "")).startswith(window_id)]

    async def metric(self, name: str) -> float | None:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(f"{self.server.url}/metrics")).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None


def config(
    home: Path, demo: DemoApp, slack: FakeSlack, pd: FakePagerDuty, shadow: bool, **extra: Any
) -> Path:
    step = {
        "name": "call-rollback",
        "kind": "http",
        "url": "http://127.0.0.1:{{ labels.port }}/rollback",
        "json": {"version": "{{ previous_version }}"},
        "retries": 0,
    }
    return config_file(
        home, health_rules(home, demo.port, shadow=shadow), plans={"demo": {"steps": [step]}},
        default_plan="demo", http_allowed_hosts=["127.0.0.1"], tick="200ms",
        notify=paging(pd.url, slack_bot_token=slack.token, slack_api_url=slack.api_url,
                      oncall_ids=[ONCALL]),
        **extra,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, *, shadow: bool = False, **settings: Any) -> AsyncIterator[Stack]:
    slack, pd = FakeSlack(), FakePagerDuty()
    await slack.start()
    await pd.start()
    with contextlib.ExitStack() as stop:
        try:
            # In threads: the starters block while they wait, and the fakes live on this loop.
            demo = await asyncio.to_thread(stop.enter_context, start_demo_app(tmp_path))
            cfg = config(tmp_path, demo, slack, pd, shadow, **settings)
            server = await asyncio.to_thread(
                stop.enter_context, start_watchdog(tmp_path / "wd", {"config": str(cfg)})
            )
            yield Stack(demo, server, slack, pd, tmp_path / "rules.yml")
        finally:
            await asyncio.to_thread(stop.close)
            await slack.stop()
            await pd.stop()


def buttons_of(body: dict[str, Any]) -> list[str]:
    blocks = body.get("blocks") or []
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


async def test_shadow_then_armed_by_sighup_rolls_back_exactly_once(tmp_path: Path) -> None:
    async with stack(tmp_path, shadow=True, confirm_for="0") as s:
        await asyncio.to_thread(s.demo.set_fault, health_down=True)
        wid = await s.open_window()

        async def would() -> bool:
            return "would_roll_back" in await s.kinds(wid)

        await until(would, "would_roll_back")
        seen = len((await s.detail(wid))["rules"][0]["samples"])

        async def six_more() -> bool:  # the rule keeps firing for six more evaluations
            return len((await s.detail(wid))["rules"][0]["samples"]) >= seen + 6

        await until(six_more, "six more evaluations")
        detail = await s.detail(wid)
        assert detail["window"]["phase"] == "watching" and detail["rules"][0]["shadow"]
        assert [e["kind"] for e in detail["events"]].count("would_roll_back") == 1
        assert await s.rollback_calls(wid) == []
        assert await s.metric("watchdog_would_rollback_total") == 1

        async def told() -> list[tuple[str, dict[str, Any]]]:
            said = [(m, b) for m, b in s.slack.calls if "would roll back" in str(b.get("text"))]
            return said if len(said) == 2 else []  # the root message updated, a thread reply

        said = await until(told, "Slack to be told")
        assert {m for m, _ in said} == {"chat.update", "chat.postMessage"}
        # The root message, updated with the news, offers nothing that acts.
        assert [buttons_of(b) for m, b in said if m == "chat.update"] == [["watchdog_ack"]]

        health_rules(s.rules.parent, s.demo.port, shadow=False).write()  # armed: no `shadow`
        os.kill(s.server.proc.pid, signal.SIGHUP)

        async def rolled_back() -> bool:
            return (await s.detail(wid))["window"]["phase"] == "rolled_back"

        await until(rolled_back, "the rollback once armed")
        kinds = await s.kinds(wid)
        assert kinds.count("would_roll_back") == 1 and kinds.count("rollback_started") == 1
        assert len(await s.rollback_calls(wid)) == 1


async def test_a_fault_the_rollback_heals_is_confirmed_recovered(tmp_path: Path) -> None:
    async with stack(tmp_path, confirm_for="3s") as s:
        await asyncio.to_thread(s.demo.set_fault, health_down=True)
        wid = await s.open_window()

        async def confirming() -> dict[str, Any] | None:
            detail = await s.detail(wid)
            return detail if detail["window"]["phase"] == "confirming" else None

        detail = await until(confirming, "confirming")
        assert detail["window"]["confirm_until"] and detail["window"]["confirm_for"] == 3
        key = f"watchdog-{wid}"
        assert s.pagerduty.incidents.get(key) != "resolved"  # not on rollback_succeeded
        page = await s.api("GET", f"/deployments/{wid}")
        assert 'data-phase="confirming"' in page.text and "confirming the recovery" in page.text

        async def ended() -> dict[str, Any] | None:
            detail = await s.detail(wid)
            return detail if detail["window"]["phase"] != "confirming" else None

        detail = await until(ended, "the confirmation")
        assert detail["window"]["phase"] == "rolled_back"
        recovered = [e for e in detail["events"] if e["kind"] == "recovered"]
        assert len(recovered) == 1 and "recovered: health back to ok" in recovered[0]["message"]
        assert 0 <= recovered[0]["data"]["took"] < 3
        assert len(await s.rollback_calls(wid)) == 1

        async def resolved() -> bool:
            return s.pagerduty.incidents.get(key) == "resolved"

        await until(resolved, "PagerDuty resolved on recovered")


async def test_a_fault_the_rollback_does_not_heal_is_ineffective_and_escalated(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path, confirm_for="3s") as s:
        await asyncio.to_thread(s.demo.set_fault, health_down=True, external=True)
        wid = await s.open_window()

        async def ended() -> dict[str, Any] | None:
            detail = await s.detail(wid)
            phase = detail["window"]["phase"]
            return detail if phase not in ("watching", "rolling_back", "confirming") else None

        detail = await until(ended, "the confirmation")
        assert detail["window"]["phase"] == "rollback_ineffective"
        assert "health still breaching" in detail["window"]["reason"]
        assert len(await s.rollback_calls(wid)) == 1  # and never a second one

        async def paged() -> list[dict[str, Any]]:
            return [
                e
                for e in s.pagerduty.events
                if e["event_action"] == "trigger" and "rollback ineffective" in str(e["payload"])
            ]

        [page] = await until(paged, "the PagerDuty escalation")
        assert page["payload"]["severity"] == "critical"
        assert "health still breaching" in page["payload"]["summary"]
        assert s.pagerduty.incidents[f"watchdog-{wid}"] == "triggered"

        async def mentioned() -> bool:
            return any(
                f"<@{ONCALL}>" in str(b.get("text")) and "rollback ineffective" in str(b["text"])
                for m, b in s.slack.calls
                if m == "chat.postMessage"
            )

        await until(mentioned, "the Slack escalation")
        assert len(await s.rollback_calls(wid)) == 1
