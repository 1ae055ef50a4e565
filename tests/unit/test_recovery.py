"""Where a crashed rollback resumes: the journal read by ``recovery.progress``."""

from __future__ import annotations

from watchdog.actions.spec import Plan
from watchdog.ha.recovery import Progress, progress
from watchdog.model import Event, EventKind

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
    a, b, c = PLAN.steps
    assert (a.safe_to_repeat, b.safe_to_repeat, c.safe_to_repeat) == (True, False, True)
