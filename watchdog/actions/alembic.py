"""The ``alembic`` step: a database migration downgrade (``alembic downgrade REV``).

A downgrade can drop columns and tables, so a plan holding this step always counts as
``data_loss_risk`` (see :class:`~watchdog.actions.spec.Plan`) and waits for approval.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import AlembicStep
from watchdog.actions.tooling import ToolRunner


class AlembicExecutor:
    """Runs :class:`~watchdog.actions.spec.AlembicStep` with the ``alembic`` CLI."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._tool = ToolRunner("alembic", (), environ)

    async def run(self, step: AlembicStep, ctx: ActionContext) -> StepResult:
        """``alembic -c CONFIG downgrade REVISION``."""
        revision = self._tool.text(step.revision, ctx)
        args = ["-c", self._tool.text(step.config, ctx), "downgrade", revision]
        result = await self._tool.run(step, ctx, args, step.timeout)
        return StepResult(result.output, {**result.data, "revision": revision})


KIND = StepKind("alembic", AlembicStep, lambda p: AlembicExecutor())
