"""Deploy auto-detection, the post-rollback version check, the approval gate for
migration downgrades and the service's own metrics: real engine, pipeline and SQLite
store, a fake clock and a scripted version reader. Nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.plan import PlanRunner
from watchdog.actions.spec import Plan
from watchdog.actions.verify import VerifyExecutor
from watchdog.clock import FakeClock
from watchdog.detect import DeployDetector
from watchdog.engine import Engine, RuleBook
from watchdog.errors import PermanentError, TransientError
from watchdog.ha.coord import SingleNode
from watchdog.journal import Journal
from watchdog.metrics import Metrics
from watchdog.model import Deployment, Event, EventKind, Sample, Window, WindowPhase
from watchdog.notify import FanoutNotifier
from watchdog.pipeline import build_pipeline
from watchdog.rulefile.load import load_rules
from watchdog.sources import SampleContext, Sources
from watchdog.store.sqlite import SqliteStore
from watchdog.versions import VersionProbe, WatchedService
from watchdog.windows import WindowService

RULES = """\
groups:
  - name: api
    interval: 10s
    rules:
      - name: errors
        source: prometheus
        query: errors
        threshold: "> 0.05"
        action: rollback
"""


@dataclass
class ScriptedVersions:
    """The version each service serves now; an Exception value is raised."""

    serving: dict[str, Any] = field(default_factory=dict)
    reads: int = 0

    async def read(self, probe: VersionProbe, variables: Mapping[str, str]) -> str:
        self.reads += 1
        value = self.serving[variables.get("service", "api")]
        if isinstance(value, Exception):
            raise value
        return str(value)


@dataclass
class Errors:
    value: float = 0.0

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        return Sample.of(self.value)

    async def close(self) -> None:
        return None


@dataclass
class Rollback:
    """A rollback step that makes the scripted service serve ``to`` (or nothing)."""

    versions: ScriptedVersions
    to: str | None = None
    calls: int = 0

    async def run(self, step: Any, ctx: ActionContext) -> StepResult:
        self.calls += 1
        if self.to is not None:
            self.versions.serving[ctx.window.deployment.service] = self.to
        return StepResult("rolled")


@dataclass
class World:
    clock: FakeClock
    store: SqliteStore
    engine: Engine
    windows: WindowService
    detector: DeployDetector
    versions: ScriptedVersions
    errors: Errors
    rollback: Rollback
    registry: CollectorRegistry

    async def run_for(self, seconds: float, step: float = 5.0) -> None:
        for _ in range(int(seconds / step)):
            await self.detector.tick()
            await self.engine.tick()
            await self.engine.drain()
            self.clock.advance(step)

    async def service_windows(self, service: str = "api") -> list[Window]:
        return await self.store.list_windows(service=service)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


class CountingNotifier:
    channel = "chat"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def notify(self, event: Event, window: Window) -> None:
        if self.fail:
            raise RuntimeError("channel down")


PLANS = {
    "rb": Plan.model_validate(
        {
            "steps": [
                {"kind": "command", "name": "rollback", "argv": ["x"]},
                {
                    "kind": "verify",
                    "name": "verify",
                    "url": "http://127.0.0.1:1/state",
                    "poll_interval": "2s",
                    "timeout": "20s",
                },
            ]
        }
    ),
    "migrate": Plan.model_validate(
        {"steps": [{"kind": "alembic", "name": "db", "revision": "-1"}]}
    ),
}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    (tmp_path / "rules.yml").write_text(RULES)
    clock = FakeClock()
    store = SqliteStore(":memory:")
    await store.open()
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    versions = ScriptedVersions({"api": "v1"})
    rollback = Rollback(versions, to="v1")
    journal = Journal(
        store, FanoutNotifier([CountingNotifier(), CountingNotifier(fail=True)], metrics=metrics)
    )
    executors = {
        "command": rollback,
        "alembic": rollback,
        "verify": VerifyExecutor(versions, clock),
    }  # type: ignore[arg-type]
    pipeline = build_pipeline(
        store=store,
        journal=journal,
        coordinator=SingleNode(),
        runner=PlanRunner(executors, clock),
        plans=PLANS,
        default_plan="rb",
        clock=clock,
        metrics=metrics,
    )
    errors = Errors()
    engine = Engine(
        store=store,
        sources=Sources({"prometheus": errors}),
        rules=RuleBook(load_rules([tmp_path / "rules.yml"])),
        pipeline=pipeline,
        journal=journal,
        clock=clock,
        metrics=metrics,
    )
    metrics.watch_windows(engine.open_windows)
    windows = WindowService(engine, default_window=300)
    detector = DeployDetector(
        [
            WatchedService(
                service="api", environment="prod", url="http://127.0.0.1:1/state", interval=5
            )
        ],
        reader=versions,
        windows=windows,
        store=store,
        clock=clock,
        metrics=metrics,  # type: ignore[arg-type]
    )
    yield World(clock, store, engine, windows, detector, versions, errors, rollback, registry)
    await engine.drain()
    await store.close()


async def test_version_change_opens_a_window_with_previous_version(world: World) -> None:
    await world.run_for(20)
    assert await world.service_windows() == []  # first sight: nothing to compare with
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    (window,) = await world.service_windows()
    assert window.deployment.version == "v2" and window.deployment.previous_version == "v1"
    assert window.deployment.environment == "prod" and window.phase is WindowPhase.WATCHING
    events = await world.store.list_events(window.id)
    assert events[0].kind is EventKind.WINDOW_OPENED and events[0].data["actor"] == "detect"
    assert world.metric("watchdog_deploys_detected_total", service="api") == 1


async def test_our_rollback_flipping_the_version_back_opens_no_window(world: World) -> None:
    await world.run_for(10)
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    world.errors.value = 0.5  # the errors rule fires: rollback serves v1 again, verify sees it
    await world.run_for(60)
    windows = await world.service_windows()
    assert len(windows) == 1, windows
    assert windows[0].phase is WindowPhase.ROLLED_BACK
    assert world.rollback.calls == 1
    assert world.metric("watchdog_rollbacks_total", service="api", result="rolled_back") == 1
    # a real new deploy afterwards still opens a window, with v1 as the previous version
    world.errors.value = 0.0
    world.versions.serving["api"] = "v3"
    await world.run_for(10)
    newest = (await world.service_windows())[0]
    assert (newest.deployment.version, newest.deployment.previous_version) == ("v3", "v1")


async def test_a_new_detector_after_restart_does_not_reopen_the_rolled_back_deploy(
    world: World,
) -> None:
    await world.run_for(10)
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    world.errors.value = 0.5
    await world.run_for(30)
    fresh = DeployDetector(
        [WatchedService(service="api", environment="prod", url="http://127.0.0.1:1/state")],
        reader=world.versions,
        windows=world.windows,
        store=world.store,
        clock=world.clock,  # type: ignore[arg-type]
    )
    assert await fresh.check(fresh._services[0]) is None
    assert len(await world.service_windows()) == 1


async def test_deploy_registered_by_ci_first_is_not_opened_twice(world: World) -> None:
    await world.run_for(10)
    await world.windows.open_window(
        Deployment("api", "prod", "v2", "v1"), window_seconds=None, actor="ci"
    )
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    assert len(await world.service_windows()) == 1


async def test_unreadable_version_is_no_change(world: World) -> None:
    await world.run_for(10)
    world.versions.serving["api"] = TransientError("connection refused")
    await world.run_for(20)
    world.versions.serving["api"] = "v1"
    await world.run_for(10)
    assert await world.service_windows() == []


async def test_rollback_whose_version_never_lands_is_rollback_failed(world: World) -> None:
    world.rollback.to = None  # the platform says ok, but v2 keeps serving
    await world.run_for(10)
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    world.errors.value = 0.5
    await world.run_for(60)
    (window,) = await world.service_windows()
    assert window.phase is WindowPhase.ROLLBACK_FAILED
    assert (
        window.reason is not None
        and "expected v1" in window.reason
        and "v2 is serving" in window.reason
    )
    assert world.metric("watchdog_rollbacks_total", service="api", result="rollback_failed") == 1
    assert world.metric("watchdog_rollbacks_total", service="api", result="rolled_back") is None


async def test_migration_downgrade_plan_waits_for_approval(world: World) -> None:
    w = await world.windows.open_window(
        Deployment("api", "prod", "v2", "v1", plan="migrate"), window_seconds=300, actor="ci"
    )
    world.errors.value = 0.5
    await world.run_for(30)
    final = await world.store.get_window(w.id)
    assert final is not None and final.phase is WindowPhase.AWAITING_APPROVAL
    assert world.rollback.calls == 0


async def test_metrics_open_windows_evaluations_and_notifications(world: World) -> None:
    await world.windows.open_window(
        Deployment("api", "prod", "v2", "v1"), window_seconds=300, actor="ci"
    )
    await world.windows.open_window(
        Deployment("web", "prod", "v9", "v8"), window_seconds=300, actor="ci"
    )
    await world.run_for(15)  # ticks at 0, 5, 10: each window's 10 s rule runs twice
    assert world.metric("watchdog_windows_open", phase="watching") == 2
    assert world.metric("watchdog_windows_open", phase="held") == 0
    assert world.metric("watchdog_rule_evaluations_total", rule="errors", verdict="ok") == 4
    assert world.metric("watchdog_source_sample_seconds_count", source="prometheus") == 4
    await world.engine.drain()
    opened = world.metric("watchdog_notifications_total", channel="chat")
    assert opened is not None and opened >= 4  # 2 window_opened x 2 chat notifiers (one failing)
    assert world.metric("watchdog_notification_failures_total", channel="chat") == opened / 2


def test_detect_settings_name_the_problem() -> None:
    from pydantic import ValidationError

    from watchdog.settings import Settings

    with pytest.raises(ValidationError, match=r"detect api: plan 'nope' is not one of the plans"):
        Settings(detect=[{"service": "api", "url": "http://127.0.0.1/v", "plan": "nope"}])
    with pytest.raises(ValidationError, match=r"give exactly one of url or query"):
        Settings(detect=[{"service": "api"}])
    with pytest.raises(ValidationError, match=r"service"):
        Settings(detect=[{"service": "api; rm", "url": "http://127.0.0.1/v"}])


async def test_verify_without_a_previous_version_fails_at_once() -> None:
    versions = ScriptedVersions({"api": "v2"})
    deployment = Deployment("api", "prod", "v2", None)
    context = ActionContext(
        Window("w", deployment, WindowPhase.ROLLING_BACK, 0, 1, 0), deployment.template_vars()
    )
    step = PLANS["rb"].steps[1]
    with pytest.raises(
        PermanentError, match=r"nothing to expect: \{\{ previous_version \}\} is empty"
    ):
        await VerifyExecutor(versions, FakeClock()).run(step, context)  # type: ignore[arg-type]
    assert versions.reads == 0
