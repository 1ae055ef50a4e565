"""The ``compose`` step: re-pin a Docker Compose service to the previous image and
``docker compose up -d --no-deps SERVICE``.

The CLI is the step's ``binary``, else the first found on PATH of ``docker`` (its
``compose`` subcommand), ``docker-compose`` and ``podman-compose`` (standalone: no
``compose`` word). The sidecar image ships Debian's ``docker-compose``, which drives the
engine whose socket is mounted (``DOCKER_HOST``; docs/deploy.md, "Rolling back from the
sidecar").

The pin is an override file written beside the project (``services: {SERVICE: {image:
…}}``) and passed after the operator's files, so their compose files are never edited
and the next ``docker compose up`` by a person keeps the rolled-back image until they
remove it. ``up -d`` converges, so retrying the step is safe.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import ComposeStep
from watchdog.actions.tooling import ToolRunner
from watchdog.foundation.errors import PermanentError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
"""What ``docker compose`` looks for when given no ``-f``; we must name it ourselves
because passing only the override would replace the project."""

_SERVICE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
STANDALONE = ("docker-compose", "podman-compose")  # compose CLIs without a `compose` word
DOCKER_ENV = ("DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH")


class ComposeExecutor:
    """Runs :class:`~watchdog.actions.spec.ComposeStep` with the ``docker`` CLI."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._tool = ToolRunner("docker", DOCKER_ENV, environ)
        self._environ = environ

    def _cli(self) -> str:
        path = (os.environ if self._environ is None else self._environ).get("PATH")
        found = (name for name in ("docker", *STANDALONE) if shutil.which(name, path=path))
        return next(found, "docker")  # none: `docker` fails saying it is not installed

    async def run(self, step: ComposeStep, ctx: ActionContext) -> StepResult:
        """Write the pin, then ``docker compose … up -d --no-deps SERVICE``."""
        service = self._tool.text(step.service, ctx)
        if not _SERVICE.match(service):
            raise PermanentError(f"compose service name {service!r} is not valid")
        image = self._tool.text(step.image, ctx)
        base = Path(step.project_directory or step.cwd or ".")
        files = [self._tool.text(f, ctx) for f in step.files] or [_default_file(base)]
        override = base / step.override
        write_override(override, service, image)
        binary = step.binary or self._cli()
        args = [] if Path(binary).name in STANDALONE else ["compose"]
        if step.project_directory:
            args += ["--project-directory", step.project_directory]
        if step.project_name:
            args += ["-p", step.project_name]
        for name in [*files, str(override)]:
            args += ["-f", name]
        args += ["up", "-d", "--no-deps", service]
        step = step.model_copy(update={"binary": binary})
        result = await self._tool.run(step, ctx, args, step.timeout)
        return StepResult(result.output, {**result.data, "service": service, "image": image})


def write_override(path: Path, service: str, image: str) -> None:
    """The override pinning ``service`` to ``image`` (JSON is valid YAML: no quoting traps)."""
    body = {"services": {service: {"image": image}}}
    try:
        path.write_text(
            "# written by rollback-watchdog: the rolled-back image\n" + json.dumps(body, indent=2)
        )
    except OSError as exc:
        raise PermanentError(f"cannot write compose override {path}: {exc}") from None


def _default_file(base: Path) -> str:
    for name in DEFAULT_FILES:
        if (base / name).is_file():
            return str(base / name)
    raise PermanentError(f"no compose file in {base} (looked for {', '.join(DEFAULT_FILES)})")


KIND = StepKind("compose", ComposeStep, lambda p: ComposeExecutor())
