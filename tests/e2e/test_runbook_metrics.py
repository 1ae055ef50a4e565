"""Runbook triggers seen through metrics and probes: a real Prometheus scraping the demo
app (HTTP requests, latency histogram, /health) and the rest of the stack's exporters
(Flower's Celery events, cAdvisor OOM events, webhooks; tests/servers/stackapp.py), with rules/api.yml,
workers.yml, manual.yml and synthetic.yml as shipped, `for` (a judge's warm-up)
compressed to a second.

A healthy window with every rule passes first; then each trigger, with only its rule
loaded (a fault's traces stay in Prometheus' rate ranges for minutes). The latency fault
goes last: its slow requests stay in the 5-minute range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.stack import DemoApp, start_demo_app, start_prometheus, wait_for_query
from tests.e2e.runbook import (
    FAST,
    Receiver,
    assert_fires,
    assert_passes_quietly,
    pack,
    receiver,
    watchdog,
)
from tests.servers.common import HANG_GUARD
from tests.servers.stackapp import Faults, StackApp, start_stack_app
from tests.shipped import shipped
from watchdog.foundation.model import EventKind

pytestmark = pytest.mark.e2e

Stack = tuple[DemoApp, StackApp, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("runbook")
    with (
        start_demo_app(tmp) as demo,
        start_stack_app() as other,
        start_prometheus(tmp, [demo.target, other.target]) as prom,
    ):
        wait_for_query(prom.url, "up", lambda v: v == [1.0, 1.0], timeout=HANG_GUARD)
        wait_for_query(
            prom.url,
            'rate(flower_events_total{type="task-succeeded"}[5m])',
            lambda v: bool(v) and v[0] > 0,
            HANG_GUARD,
        )
        yield demo, other, prom.url


@pytest.fixture
def healthy(stack: Stack) -> Iterator[Stack]:
    demo, other, _ = stack
    demo.heal()
    yield stack
    demo.heal()
    other.faults = Faults()


@pytest.fixture
async def rec() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


def local(stack: Stack) -> dict[str, dict[str, Any]]:
    """Where the probes' targets live on this machine."""
    demo, other, _ = stack
    return {
        "api-health": {"url": f"{demo.url}/health"},
        "synthetic-login": {"url": f"{other.url}/login"},
        "synthetic-core-api": {"url": f"{other.url}/api/v1/status"},
    }


def one(stack: Stack, file: str, name: str) -> list[dict[str, Any]]:
    return [shipped(file, name, **{**FAST, **local(stack).get(name, {})})]


async def test_healthy_window_passes_and_says_the_judges_baselines_fell_back(
    tmp_path: Path, healthy: Stack, rec: Receiver
) -> None:
    files = ("api.yml", "workers.yml", "manual.yml", "synthetic.yml")
    rules = pack(*files, **local(healthy))
    async with watchdog(tmp_path, rules, rec.port, prometheus_url=healthy[2]) as app:
        # long enough for the judge rules to *show* the error and slow proportions under
        # their limits (the demo's 50 requests/s), not merely to see no errors yet
        detail = await assert_passes_quietly(app, rec, seconds=20)
    baselines = [e.message for e in detail.events if e.kind is EventKind.BASELINE_CAPTURED]
    assert baselines == [
        "baseline for api-5xx-judged unavailable (no data before the deploy): "
        "judged against its ceiling 5% (or the previous version beside it)",
        "baseline for api-p95-judged unavailable (no data before the deploy): "
        "judged against its floor 5% (or the previous version beside it)",
    ]


def demo_fault(**faults: Any) -> Callable[[Stack], Any]:
    return lambda s: s[0].set_fault(**faults)


def stack_fault(flag: str) -> Callable[[Stack], Any]:
    return lambda s: setattr(s[1].faults, flag, True)


TRIGGERS = [
    ("api.yml", "api-5xx-judged", "rollback", demo_fault(error_ratio=0.4)),
    ("api.yml", "api-health", "rollback", demo_fault(health_down=True)),
    ("workers.yml", "celery-failure-ratio", "rollback", stack_fault("celery_failing")),
    ("manual.yml", "oom-kills", "notify", lambda s: s[1].oom_kill()),
    ("manual.yml", "webhook-signature-failures", "notify", stack_fault("webhook_invalid")),
    ("synthetic.yml", "synthetic-login", "notify", stack_fault("login_down")),
    ("synthetic.yml", "synthetic-core-api", "notify", stack_fault("core_down")),
    ("api.yml", "api-p95-judged", "rollback", demo_fault(latency_seconds=3.0)),  # last
]


@pytest.mark.parametrize(
    ("file", "rule", "action", "fault"), TRIGGERS, ids=[t[1] for t in TRIGGERS]
)
async def test_trigger_fires_with_its_action(
    tmp_path: Path,
    healthy: Stack,
    rec: Receiver,
    file: str,
    rule: str,
    action: str,
    fault: Callable[[Stack], Any],
) -> None:
    rules = one(healthy, file, rule)
    async with watchdog(tmp_path, rules, rec.port, prometheus_url=healthy[2]) as app:
        await assert_fires(app, rec, rule, action, lambda: fault(healthy))
