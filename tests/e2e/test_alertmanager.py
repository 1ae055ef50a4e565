"""Alertmanager end to end, with the shipped files: ``alertmanager/prometheus-rules.yml``
loaded by a real Prometheus scraping the demo app, ``alertmanager/alertmanager.yml``
routing to the watchdog (real Alertmanagers), and ``rules/alerts.yml`` in the watchdog.
Only timings are shortened (``for``, rate ranges, group timers) so it runs in seconds."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from examples.stack import DemoApp, start_demo_app, start_prometheus, wait_for_query
from tests import world
from tests.servers.alertmanager import start_alertmanager, watchdog_am_config
from tests.servers.common import HANG_GUARD
from tests.servers.rollback_target import RollbackTarget
from tests.world import served, starting
from watchdog.app import App

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
API_TOKEN = "e2e-api-token-123456"
AM_TOKEN = "e2e-am-token-abcdef"
ENV = "e2e"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoApp]:
    with start_demo_app(tmp_path_factory.mktemp("am-demo"), service="shop") as app:
        yield app


@pytest.fixture
async def watchdog(tmp_path: Path) -> AsyncIterator[Callable[[str], Any]]:
    async with starting() as begin:

        async def start(rollback_url: str) -> App:
            plan = {"steps": [{"name": "rollback", "kind": "http", "url": rollback_url}]}
            return await begin(
                served(
                    tmp_path, REPO / "rules" / "alerts.yml", token=API_TOKEN,
                    alertmanager_token=SecretStr(AM_TOKEN), tick=0.2,
                    confirm_for=0,  # ends at rolled_back: confirmation has its own tests
                    plans={"default": plan}, default_plan="default",
                    http_allowed_hosts=["127.0.0.1"],
                )
            )  # fmt: skip

        yield start


async def api(app: App, method: str, path: str, **kw: Any) -> Any:
    resp = await world.api(app, method, path, token=API_TOKEN, **kw)
    assert resp.status_code < 300, resp.text
    return resp.json()


async def open_window(app: App, service: str) -> str:
    body = {"service": service, "environment": ENV, "version": "v2", "previous_version": "v1"}
    return str((await api(app, "POST", "/api/v1/deployments", json=body))["id"])


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.25)


def fast_rules(tmp_path: Path) -> Path:
    """The shipped alerting rules with test-sized `for` and rate ranges."""
    text = (REPO / "alertmanager" / "prometheus-rules.yml").read_text()
    text = re.sub(r"for: \d+m", "for: 1s", text)
    text = re.sub(r"\[(1m|5m)\]", "[5s]", text)
    path = tmp_path / "prometheus-rules.yml"
    path.write_text(text)
    return path


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "watchdog-token"
    path.write_text(AM_TOKEN + "\n")
    return path


async def test_error_spike_alert_rolls_back_once_and_resolution_is_recorded(
    demo: DemoApp, watchdog: Callable[[str], Any], tmp_path: Path
) -> None:
    demo.heal()
    app = await watchdog(f"{demo.url}/rollback")
    config = watchdog_am_config(f"{app.url}/api/v1/alertmanager", token_file(tmp_path))
    with start_alertmanager(tmp_path, config) as am:
        alerting = (
            f"rule_files: [{fast_rules(tmp_path)}]\n"
            "alerting:\n  alertmanagers:\n    - static_configs:\n"
            f"        - targets: ['127.0.0.1:{am.port}']\n"
        )
        with start_prometheus(
            tmp_path, [demo.target], extra_config=alerting, external_labels={"environment": ENV}
        ) as prom:
            wait_for_query(prom.url, 'up{job="demo"}', lambda v: v == [1.0], timeout=HANG_GUARD)
            window = await open_window(app, demo.service)
            demo.set_fault(error_ratio=0.4)

            async def rolled_back() -> Any:
                detail = await api(app, "GET", f"/api/v1/deployments/{window}")
                return detail if detail["window"]["phase"] == "rolled_back" else None

            detail = await until(rolled_back, 60, "the rollback")

            async def resolved() -> Any:
                out = await api(app, "GET", "/api/v1/alerts", params={"status": "resolved"})
                return out["alerts"]

            # The rollback healed the app: Prometheus resolves, Alertmanager tells us.
            done = await until(resolved, 60, "the resolved notification")
    calls = [c for c in demo.rollback_calls() if c["status"] == 200]
    assert len(calls) == 1
    assert done[0]["labels"]["alertname"] == "APIHigh5xxRatio"
    assert done[0]["labels"]["environment"] == ENV and done[0]["ends_at"] is not None
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("rollback_started") == 1 and kinds.count("rollback_succeeded") == 1
    firing = next(e for e in detail["events"] if e["kind"] == "rule_firing")
    assert firing["rule"] == "alert-api-5xx"


def am_alert(service: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "APIHigh5xxRatio",
            "service": service,
            "environment": ENV,
            "severity": "critical",
            "rollback": "true",
        },
        "annotations": {"summary": "5xx"},
        "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus/graph",
    }


def webhook_sends(am_url: str) -> float:
    text = httpx.get(f"{am_url}/metrics", timeout=5).text
    match = re.search(
        r'^alertmanager_notifications_total\{integration="webhook"\} (\S+)', text, re.M
    )
    return float(match.group(1)) if match else 0.0


async def test_repeats_and_two_peers_lead_to_one_rollback(
    watchdog: Callable[[str], Any], rollback_target: RollbackTarget, tmp_path: Path
) -> None:
    app = await watchdog(rollback_target.url)
    window = await open_window(app, "cart")
    config = watchdog_am_config(f"{app.url}/api/v1/alertmanager", token_file(tmp_path))
    # Two peers that do not gossip (the worst case: each one notifies on its own).
    with start_alertmanager(tmp_path, config) as one, start_alertmanager(tmp_path, config) as two:
        alert = am_alert("cart")  # as one Prometheus sends it to every Alertmanager
        await asyncio.to_thread(one.post_alerts, [alert])
        await asyncio.to_thread(two.post_alerts, [alert])

        async def repeated() -> Any:
            alerts = (await api(app, "GET", "/api/v1/alerts"))["alerts"]
            sends = [webhook_sends(one.url), webhook_sends(two.url)]
            return alerts if alerts and alerts[0]["notifications"] >= 4 and min(sends) else None

        alerts = await until(repeated, 60, "four deliveries from both peers")
    assert len(alerts) == 1  # one occurrence, however often it was delivered
    detail = await api(app, "GET", f"/api/v1/deployments/{window}")
    assert detail["window"]["phase"] == "rolled_back"
    assert len(rollback_target.calls) == 1
