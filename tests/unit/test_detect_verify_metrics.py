"""Deploy auto-detection, the post-rollback version check, the approval gate for
migration downgrades and the service's own metrics: the app built through App.build
(real engine, pipeline, SQLite store, version reader) with a fake clock and the served
versions answered by an httpx MockTransport. Nothing sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from tests.rules import errors_rollback
from tests.world import app_settings, opened
from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.spec import Plan
from watchdog.actions.verify import VerifyExecutor
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, EventKind, Sample, Window, WindowPhase
from watchdog.lifecycle.detect import DeployDetector
from watchdog.lifecycle.engine import Engine
from watchdog.lifecycle.windows import WindowService
from watchdog.settings import Settings
from watchdog.sources import SampleContext
from watchdog.sources.versions import VersionProbe, VersionReader
from watchdog.store.base import Store


@dataclass
class ScriptedVersions:
    """The version each service serves now, answered over HTTP as ``{"version": ...}``
    (an httpx transport: the app's real version reader reads it); an Exception value
    is a refused connection."""

    serving: dict[str, Any] = field(default_factory=dict)
    reads: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.reads += 1
        value = self.serving[request.url.path.strip("/").split("/")[0] or "api"]
        if isinstance(value, Exception):
            raise httpx.ConnectError(str(value), request=request)
        return httpx.Response(200, json={"version": value})

    async def read(self, probe: VersionProbe, variables: Mapping[str, str]) -> str:
        """The same answer through the real reader (for the lone VerifyExecutor test)."""
        async with httpx.AsyncClient(transport=self.transport()) as client:
            return await VersionReader(client, "http://127.0.0.1:1").read(probe, variables)


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
    store: Store
    engine: Engine
    windows: WindowService
    detector: DeployDetector
    versions: ScriptedVersions
    errors: Errors
    rollback: Rollback
    registry: CollectorRegistry
    seams: dict[str, Any]

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


PLANS = {
    "rb": Plan.model_validate(
        {
            "steps": [
                {"kind": "command", "name": "rollback", "argv": ["x"]},
                {
                    "kind": "verify",
                    "name": "verify",
                    "url": "http://127.0.0.1:1/api/state",
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


DETECT = [
    {"service": "api", "environment": "prod", "url": "http://127.0.0.1:1/api/state", "interval": 5}
]


def world_settings(tmp_path: Path) -> Settings:
    return app_settings(
        tmp_path, errors_rollback(tmp_path), plans=PLANS, default_plan="rb", detect=DETECT, window=300,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
    )  # fmt: skip


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    versions = ScriptedVersions({"api": "v1"})
    rollback = Rollback(versions, to="v1")
    errors = Errors()
    seams = {
        "transport": versions.transport(),
        "sources": {"prometheus": errors},
        "executors": {"command": rollback, "alembic": rollback},
    }
    async with opened(world_settings(tmp_path), clock=clock, **seams) as parts:
        assert parts.detector is not None
        yield World(
            clock, parts.store, parts.engine, parts.windows, parts.detector, versions, errors,
            rollback, parts.registry, seams,
        )  # fmt: skip


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
    world: World, tmp_path: Path
) -> None:
    await world.run_for(10)
    world.versions.serving["api"] = "v2"
    await world.run_for(10)
    world.errors.value = 0.5
    await world.run_for(30)
    # a restart: a second app on the same store; its detector has never seen a version
    async with opened(
        world_settings(tmp_path), clock=world.clock, store=world.store, **world.seams
    ) as fresh:
        assert fresh.detector is not None
        assert await fresh.detector.check(fresh.detector._services[0]) is None
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


async def test_metrics_open_windows_and_evaluations(world: World) -> None:
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


async def test_a_detected_deploy_past_max_open_windows_is_refused_then_watched_once_room(
    world: World, tmp_path: Path
) -> None:
    settings = app_settings(
        tmp_path, errors_rollback(tmp_path), plans=PLANS, default_plan="rb", detect=DETECT, window=300,
        max_open_windows=1,
    )  # fmt: skip
    async with opened(settings, clock=world.clock, store=world.store, **world.seams) as app:
        assert app.detector is not None
        detector, spec = app.detector, app.detector._services[0]
        other = await app.windows.open_window(
            Deployment("billing", "prod", "b2", "b1"), window_seconds=None, actor="ci"
        )
        assert await detector.check(spec) is None  # first sight of api
        world.versions.serving["api"] = "v2"
        with capture_logs() as logs:
            assert await detector.check(spec) is None  # refused: billing holds the one slot
            assert await detector.check(spec) is None  # still refused, still remembered
        refusals = [e for e in logs if e["event"] == "deploy not watched: too many open windows"]
        assert len(refusals) == 2 and refusals[0]["actor"] == "detect"
        assert refusals[0]["log_level"] == "error" and "api v2" in refusals[0]["reason"]
        assert await world.service_windows() == []
        refused = app.registry.get_sample_value(
            "watchdog_windows_refused_total", {"actor": "detect"}
        )
        assert refused == 2
        await world.store.set_phase(other.id, WindowPhase.ABORTED, at=world.clock.now())
        window = await detector.check(spec)
        assert window is not None
        assert (window.deployment.version, window.deployment.previous_version) == ("v2", "v1")
