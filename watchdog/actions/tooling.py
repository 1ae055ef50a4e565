"""What the platform CLI executors (compose, kubernetes, alembic) share: the binary,
the child's minimal environment, and argv rendering. Never a shell."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from watchdog.actions.base import ActionContext, StepResult
from watchdog.actions.command import INHERITED_ENV, run_argv, watchdog_env
from watchdog.actions.spec import ToolStep
from watchdog.rulefile.template import render


def _identity(value: str) -> str:
    return value


class ToolRunner:
    """Runs one CLI (``docker``, ``kubectl``, ``alembic``) for a step.

    ``tool_env`` names variables the tool needs from our environment (``KUBECONFIG``,
    ``DOCKER_HOST``…); nothing else of ours reaches the child, so secrets stay here.
    ``environ`` defaults to the process environment, read at each run.
    """

    def __init__(
        self,
        tool: str,
        tool_env: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.tool = tool
        self._tool_env = tuple(tool_env)
        self._environ = environ

    def text(self, value: str, ctx: ActionContext) -> str:
        """Render one templated value (checked against the safe pattern)."""
        return render(value, ctx.variables, _identity)

    def env(self, step: ToolStep, ctx: ActionContext) -> dict[str, str]:
        """The child's environment: a few of ours, the step's, then ``WATCHDOG_*``."""
        source = os.environ if self._environ is None else self._environ
        names = (*INHERITED_ENV, *self._tool_env, *step.inherit_env)
        env = {name: source[name] for name in names if name in source}
        env.update({k: self.text(v, ctx) for k, v in step.env.items()})
        env.update(watchdog_env(step, ctx))
        return env

    async def run(
        self, step: ToolStep, ctx: ActionContext, args: Sequence[str], limit: float
    ) -> StepResult:
        """Run ``BINARY ARGS…`` once with the step's environment and working directory."""
        argv = [step.binary or self.tool, *args]
        return await run_argv(argv, self.env(step, ctx), step.cwd, limit)
