"""The CI gate: phase changes and events streamed, one exit code per outcome."""

from __future__ import annotations

import io
from typing import Any

import pytest

from watchdog.cli.gate import (
    EXIT_ABORTED,
    EXIT_AWAITING_APPROVAL,
    EXIT_ERROR,
    EXIT_PASSED,
    EXIT_ROLLBACK_FAILED,
    EXIT_ROLLBACK_INEFFECTIVE,
    EXIT_ROLLED_BACK,
    EXIT_TIMEOUT,
    wait_for_outcome,
)


def detail(phase: str, *events: tuple[int, str]) -> dict[str, Any]:
    return {
        "window": {"phase": phase},
        "events": [
            {"seq": seq, "at": 1_800_000_000 + seq, "kind": kind, "rule": None, "message": kind}
            for seq, kind in events
        ],
    }


class Script:
    """Answers each fetch with the next detail; counts fetches and sleeps."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.fetches = 0
        self.slept: list[float] = []
        self.now = 0.0

    def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        return self.answers[min(self.fetches, len(self.answers)) - 1]

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(script: Script, timeout: float | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = wait_for_outcome(
        script.fetch,
        interval=2.0,
        timeout=timeout,
        out=out,
        sleep=script.sleep,
        monotonic=lambda: script.now,
    )
    return code, out.getvalue().splitlines()


@pytest.mark.parametrize(
    ("phase", "code"),
    [
        ("passed", EXIT_PASSED),
        ("rolled_back", EXIT_ROLLED_BACK),
        ("rollback_failed", EXIT_ROLLBACK_FAILED),
        ("rollback_ineffective", EXIT_ROLLBACK_INEFFECTIVE),
        ("aborted", EXIT_ABORTED),
        ("superseded", EXIT_ABORTED),
        ("no-such-phase", EXIT_ERROR),
    ],
)
def test_each_outcome_has_its_exit_code(phase: str, code: int) -> None:
    script = Script(detail("watching"), detail("rolling_back"), detail(phase))
    got, lines = run(script)
    assert got == code
    assert script.fetches == 3 and script.slept == [2.0, 2.0]
    assert lines[-1] == f"outcome: {phase} (exit {code})"


def test_streams_each_phase_change_and_each_event_once() -> None:
    script = Script(
        detail("watching", (1, "window_opened")),
        detail("watching", (1, "window_opened")),
        detail("watching", (1, "window_opened"), (2, "rule_firing")),
        detail("rolled_back", (1, "window_opened"), (2, "rule_firing"), (3, "rollback_succeeded")),
    )
    code, lines = run(script)
    assert code == EXIT_ROLLED_BACK
    kinds = [line.split(" ", 1)[1] for line in lines if not line.startswith(("phase", "outcome"))]
    assert kinds == ["window_opened: window_opened", "rule_firing: rule_firing",
                     "rollback_succeeded: rollback_succeeded"]  # fmt: skip
    assert [line for line in lines if line.startswith("phase")] == [
        "phase: watching",
        "phase: rolled_back",
    ]


def test_the_gate_waits_through_the_confirmation() -> None:
    script = Script(detail("rolling_back"), detail("confirming"), detail("rolled_back"))
    code, lines = run(script)
    assert code == EXIT_ROLLED_BACK and script.fetches == 3
    assert "phase: confirming" in lines
    code, lines = run(Script(detail("confirming")), timeout=3)
    assert code == EXIT_TIMEOUT and lines[-1] == "outcome: still confirming after 3s (exit 7)"


def test_timeout_while_awaiting_approval_is_its_own_outcome() -> None:
    script = Script(detail("watching"), detail("awaiting_approval"))
    code, lines = run(script, timeout=5)
    assert code == EXIT_AWAITING_APPROVAL
    assert lines[-1] == "outcome: still awaiting_approval after 5s (exit 5)"


def test_timeout_while_watching() -> None:
    code, lines = run(Script(detail("watching")), timeout=3)
    assert code == EXIT_TIMEOUT
    assert lines[-1] == "outcome: still watching after 3s (exit 7)"
