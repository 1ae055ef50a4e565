"""The Executor port: one small Protocol per kind of rollback step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from watchdog.model import Window


@dataclass(frozen=True)
class ActionContext:
    """What a step may use: the window it rolls back and the template variables."""

    window: Window
    variables: Mapping[str, str]
    attempt: int = 1


@dataclass(frozen=True)
class StepResult:
    """A step that succeeded, with what it said (kept in the journal, truncated)."""

    output: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Runs one step of a rollback plan.

    Returns a StepResult on success; raises ``TransientError`` when trying again may
    help (timeouts, refused connections, 5xx, 429) and ``PermanentError`` when it
    cannot (4xx, exit status of a command, a host that is not allowed).
    """

    async def run(self, step: Any, ctx: ActionContext) -> StepResult:
        """Execute ``step`` (a step model of this executor's kind)."""
        ...
