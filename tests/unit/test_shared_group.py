"""A ``shared_by`` rule's due windows are evaluated together: one task, their writes
stored in one batch, each window judged, journalled and acted on as if alone, and a
window whose evaluation fails fails alone (``Evaluating.evaluate_many``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import PLAN
from tests.rules import rules
from tests.world import World, app_settings, world_of
from watchdog.foundation.model import Deployment, EventKind, Sample, Verdict, Window
from watchdog.lifecycle import engine as engine_module
from watchdog.sources import SampleContext
from watchdog.store.batch import EvaluationWrite

SERVICES = ("api", "web", "jobs")


class ByService:
    """Answers a rule with the value set for the window's service; records each
    (rule, service) asked."""

    def __init__(self) -> None:
        self.values: dict[str, float] = dict.fromkeys(SERVICES, 0.0)
        self.calls: list[tuple[str, str]] = []

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        service = ctx.variables["service"]
        self.calls.append((rule.name, service))
        return Sample.of(self.values[service] if ctx.live else 0.0)

    async def close(self) -> None:
        return None


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    query = "sum by (service) (rate(errors_total[5m]))"
    file = (
        rules(tmp_path)
        .prometheus("errors", query, shared_by="service", above=0.05, action="rollback")
        .prometheus("own", 'up{service="{{ service }}"}', above=5, action="notify")
    )
    settings = app_settings(
        tmp_path, file, plans={"default": PLAN}, default_plan="default", window=600,
        confirm_for=0,
    )  # fmt: skip
    async with world_of(settings, sources={"prometheus": ByService()}) as w:
        yield w


def source(world: World) -> ByService:
    found = world.engine.sources.get("prometheus")
    assert isinstance(found, ByService)
    return found


async def open_all(world: World) -> list[Window]:
    return [
        await world.windows.open_window(
            Deployment(s, "production", "v2", previous_version="v1"), window_seconds=600,
            actor="test",
        )
        for s in SERVICES
    ]  # fmt: skip


def record_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """Every batch the store is handed, as its (window, rule) pairs."""
    batches: list[list[tuple[str, str]]] = []
    store = world.store
    real = store.record_evaluations  # type: ignore[attr-defined]

    async def recording(writes: Sequence[EvaluationWrite]) -> None:
        batches.append([(w.window_id, w.rule) for w in writes])
        await real(writes)

    monkeypatch.setattr(store, "record_evaluations", recording)
    return batches


async def test_a_shared_rules_due_windows_are_judged_in_one_task_and_stored_in_one_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows = await open_all(world)
    batches = record_batches(world, monkeypatch)
    tasks: list[tuple[str, int]] = []
    real_many = world.engine.evaluate_many

    async def counting(group: Sequence[Window], rule: Any) -> None:
        tasks.append((rule.name, len(group)))
        await real_many(group, rule)

    monkeypatch.setattr(world.engine, "evaluate_many", counting)
    await world.engine.tick()
    await world.engine.drain()
    assert tasks == [("errors", 3)]  # the per-window rule is not grouped
    assert sorted(c for c in source(world).calls if c[0] == "errors") == sorted(
        ("errors", s) for s in SERVICES
    )
    shared = [[key for key in batch if key[1] == "errors"] for batch in batches]
    assert [sorted(b) for b in shared if b] == [sorted((w.id, "errors") for w in windows)]
    for w in windows:
        states = await world.store.load_rule_states(w.id)
        assert states["errors"].verdict is Verdict.OK and states["errors"].judged == 1


async def test_a_window_breaching_in_a_group_rolls_back_alone_and_a_failure_is_its_own(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, web, jobs = await open_all(world)
    source(world).values.update(web=0.5, jobs=0.5)  # both breach; jobs' state cannot be saved
    store: Any = world.store
    real_save = store.save_rule_state

    async def refuse_batches(writes: Sequence[EvaluationWrite]) -> None:
        raise RuntimeError("batch refused")  # each write is then stored on its own

    async def save(window_id: str, rule: str, state: Any) -> None:
        if window_id == jobs.id:
            raise RuntimeError("window deleted meanwhile")
        await real_save(window_id, rule, state)

    monkeypatch.setattr(store, "record_evaluations", refuse_batches)
    monkeypatch.setattr(store, "save_rule_state", save)
    await world.engine.tick()
    await world.engine.drain()
    assert [window_id for _, window_id in world.executor.calls] == [web.id]  # exactly once
    assert (await world.store.load_rule_states(api.id))["errors"].verdict is Verdict.OK
    assert (await world.store.load_rule_states(web.id))["errors"].verdict is Verdict.FIRING
    assert await world.store.load_rule_states(jobs.id) == {}  # failed alone: not judged on
    assert EventKind.RULE_FIRING in await world.kinds(web)
    assert EventKind.RULE_FIRING not in await world.kinds(jobs)


async def test_groups_are_at_most_group_windows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "GROUP", 2)
    await open_all(world)
    sizes: list[int] = []
    real_many = world.engine.evaluate_many

    async def counting(group: Sequence[Window], rule: Any) -> None:
        sizes.append(len(group))
        await real_many(group, rule)

    monkeypatch.setattr(world.engine, "evaluate_many", counting)
    await world.engine.tick()
    await world.engine.drain()
    assert sorted(sizes) == [1, 2]
