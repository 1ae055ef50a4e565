"""The ``verify`` step: is the previous version the one serving now?

A rollback is only *rolled back* once the platform serves the old build: Render may
still be starting it, Kubernetes may be half way through. The step polls the version
(a JSON field of a health endpoint, or a ``build_info``-style metric's label) until it
equals ``expect`` (by default ``{{ previous_version }}``); if the time runs out, the
step fails permanently saying what was served instead, and the window ends
``rollback_failed``.
"""

from __future__ import annotations

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import VerifyStep
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import PermanentError, WatchdogError
from watchdog.rulefile.template import placeholders, render
from watchdog.sources.versions import VersionProbe, VersionReader

MARGIN = 0.9
"""Share of the step's timeout spent polling; the rest lets the last read finish."""


def _identity(value: str) -> str:
    return value


class VerifyExecutor:
    """Runs :class:`~watchdog.actions.spec.VerifyStep`; waits through the injected clock."""

    def __init__(self, reader: VersionReader, clock: Clock) -> None:
        self._reader = reader
        self._clock = clock

    async def run(self, step: VerifyStep, ctx: ActionContext) -> StepResult:
        """Poll until the expected version serves or the time is up."""
        if any(not ctx.variables.get(name) for name in placeholders(step.expect)):
            raise PermanentError(f"verify: nothing to expect: {step.expect} is empty here")
        expected = render(step.expect, ctx.variables, _identity)
        probe = VersionProbe(step.url, step.json_field, step.query, step.label)
        deadline = self._clock.now() + step.timeout * MARGIN
        seen = "nothing yet"
        while True:
            try:
                version = await self._reader.read(probe, ctx.variables)
                if version == expected:
                    return StepResult(f"{expected} is serving", {"version": version})
                seen = f"{version} is serving"
            except WatchdogError as exc:
                seen = str(exc)
            if self._clock.now() + step.poll_interval > deadline:
                raise PermanentError(
                    f"version check failed: expected {expected} after {step.timeout:g}s, "
                    f"but {seen} ({probe.describe()})"
                )
            await self._clock.sleep(step.poll_interval)


KIND = StepKind("verify", VerifyStep, lambda p: VerifyExecutor(p.versions, p.clock))
