"""Where a crashed rollback resumes (the journal read by ``recovery.progress``), and
recovery as ``build_pipeline`` composes it, driven through the built app."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import RecordingExecutor, ScriptedSource
from tests.rules import rules
from tests.world import app_settings, opened
from watchdog.actions.plan import PlanOutcome
from watchdog.actions.spec import Plan
from watchdog.app import Parts
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Action, Deployment, Event, EventKind, Window, WindowPhase
from watchdog.pipeline.base import Decision
from watchdog.pipeline.record import Record
from watchdog.pipeline.recovery import Progress, progress

PLAN = Plan.model_validate(
    {
        "steps": [
            {"name": "a", "kind": "http", "url": "http://x/a"},
            {"name": "b", "kind": "command", "argv": ["true"]},
            {"name": "c", "kind": "command", "argv": ["true"], "idempotent": True},
        ]
    }
)


def ev(kind: EventKind, step: str) -> Event:
    return Event("w", 0.0, kind, "", data={"step": step})


def test_nothing_journaled_starts_at_the_first_step() -> None:
    assert progress(PLAN, []) == Progress(0)


def test_succeeded_steps_are_skipped_and_a_started_one_is_in_doubt() -> None:
    events = [
        ev(EventKind.STEP_STARTED, "a"),
        ev(EventKind.STEP_SUCCEEDED, "a"),
        ev(EventKind.STEP_STARTED, "b"),
    ]
    assert progress(PLAN, events) == Progress(1, in_doubt="b")


def test_a_failed_attempt_is_known_not_in_doubt() -> None:
    events = [ev(EventKind.STEP_STARTED, "a"), ev(EventKind.STEP_FAILED, "a")]
    assert progress(PLAN, events) == Progress(0)


def test_a_retry_started_after_a_failure_is_in_doubt_again() -> None:
    events = [
        ev(EventKind.STEP_STARTED, "a"),
        ev(EventKind.STEP_FAILED, "a"),
        ev(EventKind.STEP_STARTED, "a"),
    ]
    assert progress(PLAN, events) == Progress(0, in_doubt="a")


def test_all_succeeded_means_only_the_recording_is_left() -> None:
    events = [ev(EventKind.STEP_SUCCEEDED, n) for n in "abc"]
    assert progress(PLAN, events) == Progress(3)


def test_which_steps_are_safe_to_repeat() -> None:
    # http is not, unless the plan says so: many deploy endpoints ignore Idempotency-Key.
    a, b, c = PLAN.steps
    assert (a.safe_to_repeat, b.safe_to_repeat, c.safe_to_repeat) == (False, False, True)
    http = {"name": "h", "kind": "http", "url": "http://x/", "idempotent": True}
    assert Plan.model_validate({"steps": [http]}).steps[0].safe_to_repeat


def test_a_step_that_failed_for_good_is_not_run_again() -> None:
    failed = Event("w", 0.0, EventKind.STEP_FAILED, "", data={"step": "a", "transient": False})
    failed = Event("w", 0.0, EventKind.STEP_FAILED, "x", data={**failed.data, "output": "exit 3"})
    assert progress(PLAN, [ev(EventKind.STEP_STARTED, "a"), failed]) == Progress(0, failed="exit 3")


# --- recovery as build_pipeline composes it, through the built app --------------------

STEPS = {"steps": [{"name": "redeploy", "kind": "command", "argv": ["true"]}]}


async def claimed_window(parts: Parts, *, announced: bool) -> Window:
    """A window whose rollback was claimed (Fence) when the process died."""
    d = Deployment("api", "prod", "v2", previous_version="v1")
    window = await parts.windows.open_window(d, window_seconds=600, actor="ci")
    assert await parts.store.claim_action(
        window.id, "rollback", token=1, actor="rule:errors", at=window.started_at
    )
    if announced:  # it got as far as journaling rollback_started
        await parts.journal.record(window, EventKind.ROLLBACK_STARTED, "rolling back", at=1.0)
    return window


@pytest.mark.parametrize("announced", [False, True])
async def test_recovery_finishes_a_claimed_rollback_once_and_announces_it_once(
    tmp_path: Path, announced: bool
) -> None:
    executor = RecordingExecutor()
    file = rules(tmp_path).group("g", None).prometheus("errors", "errors", above=1)
    settings = app_settings(
        tmp_path, file, plans={"p": STEPS}, default_plan="p",
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
    )  # fmt: skip
    seams = {"executors": {"command": executor}, "sources": {"prometheus": ScriptedSource()}}
    async with opened(settings, clock=FakeClock(), **seams) as parts:
        window = await claimed_window(parts, announced=announced)
        assert await parts.recovery.run() == 1
        assert executor.calls == [("redeploy", window.id)]
        final = await parts.store.get_window(window.id)
        assert final is not None and final.phase is WindowPhase.ROLLED_BACK
        kinds = [e.kind for e in await parts.store.list_events(window.id)]
        assert kinds.count(EventKind.ROLLBACK_STARTED) == 1
        assert kinds.count(EventKind.ROLLBACK_SUCCEEDED) == 1
        assert await parts.recovery.run() == 0  # nothing left to resume
        assert len(executor.calls) == 1


async def test_an_outcome_recorded_by_two_processes_is_told_once(tmp_path: Path) -> None:
    """The leader records a rollback's outcome while a new leader's recovery finishes
    the same one ("only the recording was lost"): both hold the window as rolling back,
    only the first to move it on journals ``rollback_succeeded``."""
    file = rules(tmp_path).group("g", None).prometheus("errors", "errors", above=1)
    settings = app_settings(tmp_path, file, plans={"p": STEPS}, default_plan="p", confirm_for=0)
    seams = {
        "executors": {"command": RecordingExecutor()},
        "sources": {"prometheus": ScriptedSource()},
    }
    async with opened(settings, clock=FakeClock(), **seams) as parts:
        window = await claimed_window(parts, announced=True)
        assert await parts.store.set_phase(window.id, WindowPhase.ROLLING_BACK, at=1.0)
        rolling = await parts.store.get_window(window.id)
        assert rolling is not None
        record = Record(parts.store, parts.journal, FakeClock())
        d = Decision(
            window=rolling, action=Action.ROLLBACK, trigger="errors", actor="rule:errors",
            reason="errors fired", at=1.0, token=1, outcome=PlanOutcome(ok=True),
        )  # fmt: skip
        first, second = await record(d), await record(d)
        assert first is not None and second is None
        kinds = [e.kind for e in await parts.store.list_events(window.id)]
        assert kinds.count(EventKind.ROLLBACK_SUCCEEDED) == 1
        final = await parts.store.get_window(window.id)
        assert final is not None and final.phase is WindowPhase.ROLLED_BACK
