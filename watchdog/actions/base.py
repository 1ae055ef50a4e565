"""The Executor port: one small Protocol per kind of rollback step, and
:class:`StepKind`, what each executor module exports (:mod:`watchdog.actions.kinds`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.foundation.model import Window

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel

    from watchdog.foundation.clock import Clock
    from watchdog.settings import Settings
    from watchdog.sources.versions import VersionReader


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


@dataclass(frozen=True)
class ExecutorParts:
    """What an executor's builder may use."""

    settings: Settings
    client: httpx.AsyncClient  # the app's shared client
    versions: VersionReader  # which version a service serves (verify steps)
    clock: Clock


@dataclass(frozen=True)
class StepKind:
    """One kind of rollback step, in the module that runs it: its ``kind:`` value,
    the step model (:mod:`watchdog.actions.spec`) and the executor built from settings.
    Every field is required: an entry that forgets one fails at import."""

    name: str
    step: type[BaseModel]
    build: Callable[[ExecutorParts], Executor]
