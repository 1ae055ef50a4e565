"""The ``kubernetes`` step: ``kubectl rollout undo deployment/NAME -n NS`` then
``kubectl rollout status`` until the rollout settles.

Without ``to_revision`` an undo toggles between the last two revisions, so running it
twice would bring the bad build back. Every failure of this step is therefore
permanent (people look), never retried; pin ``to_revision`` if you want certainty.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import KubernetesStep
from watchdog.actions.tooling import ToolRunner
from watchdog.foundation.errors import PermanentError, TransientError

KUBE_ENV = ("KUBECONFIG",)
STATUS_SHARE = 0.8
"""Share of the step's timeout given to ``rollout status`` (the rest covers the undo)."""


class KubernetesExecutor:
    """Runs :class:`~watchdog.actions.spec.KubernetesStep` with ``kubectl``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._tool = ToolRunner("kubectl", KUBE_ENV, environ)

    async def run(self, step: KubernetesStep, ctx: ActionContext) -> StepResult:
        """Undo the rollout, then wait for it to complete."""
        target = f"deployment/{self._tool.text(step.deployment, ctx)}"
        common = ["-n", self._tool.text(step.namespace, ctx)]
        if step.context:
            common = ["--context", self._tool.text(step.context, ctx), *common]
        undo = [*common, "rollout", "undo", target]
        if step.to_revision is not None:
            undo.append(f"--to-revision={step.to_revision}")
        wait = max(1, int(step.timeout * STATUS_SHARE))
        status = [*common, "rollout", "status", target, f"--timeout={wait}s"]
        undone = await self._once(step, ctx, undo, "rollout undo")
        settled = await self._once(step, ctx, status, "rollout status")
        return StepResult(undone.output + settled.output, {"deployment": target})

    async def _once(
        self, step: KubernetesStep, ctx: ActionContext, args: list[str], what: str
    ) -> StepResult:
        try:
            return await self._tool.run(step, ctx, args, step.timeout)
        except TransientError as exc:
            raise PermanentError(f"kubectl {what}: {exc} (not retried: undo toggles)") from None


KIND = StepKind("kubernetes", KubernetesStep, lambda p: KubernetesExecutor())
