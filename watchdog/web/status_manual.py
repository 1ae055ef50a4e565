"""The rollback plan as commands a person can run by hand, for the page's "what now" box.

Each step becomes the command the watchdog itself would have run (the deployment's
variables filled in), or a line saying what to do where there is no single command.
Headers, bodies and environment are left out on purpose: they may carry secrets.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping

from watchdog.actions.spec import (
    AlembicStep,
    CommandStep,
    ComposeStep,
    HttpStep,
    KubernetesStep,
    Plan,
    RenderStep,
)
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import Deployment
from watchdog.rulefile.template import render

PlanLookup = Callable[[Deployment], tuple[str | None, Plan | None]]


def _fill(template: str, variables: Mapping[str, str]) -> str:
    try:
        return render(template, variables, lambda v: v)
    except PermanentError:
        return template  # a variable this deploy lacks: show the template as written


def _kubectl(step: KubernetesStep, v: Mapping[str, str]) -> str:
    argv = ["kubectl"]
    if step.context:
        argv += ["--context", _fill(step.context, v)]
    argv += ["-n", _fill(step.namespace, v), "rollout", "undo"]
    argv.append(f"deployment/{_fill(step.deployment, v)}")
    if step.to_revision is not None:
        argv.append(f"--to-revision={step.to_revision}")
    return shlex.join(argv)


def _compose(step: ComposeStep, v: Mapping[str, str]) -> str:
    argv = ["docker", "compose"]
    if step.project_directory:
        argv += ["--project-directory", step.project_directory]
    if step.project_name:
        argv += ["-p", step.project_name]
    for name in step.files:
        argv += ["-f", _fill(name, v)]
    service = _fill(step.service, v)
    argv += ["up", "-d", "--no-deps", service]
    return f"# pin {service} to image {_fill(step.image, v)} first, then\n{shlex.join(argv)}"


def step_command(step: object, variables: Mapping[str, str]) -> str:
    """One step by hand."""
    v = variables
    if isinstance(step, CommandStep):
        return shlex.join(_fill(arg, v) for arg in step.argv)
    if isinstance(step, KubernetesStep):
        return _kubectl(step, v)
    if isinstance(step, ComposeStep):
        return _compose(step, v)
    if isinstance(step, HttpStep):
        return shlex.join(["curl", "-X", step.method, _fill(step.url, v)])
    if isinstance(step, AlembicStep):
        return shlex.join(["alembic", "-c", step.config, "downgrade", _fill(step.revision, v)])
    if isinstance(step, RenderStep):
        return f"# Render dashboard: roll service {_fill(step.service_id, v)} back"
    name = getattr(step, "name", "step")
    return f"# {name}: check by hand that the previous version runs"


def plan_commands(deployment: Deployment, lookup: PlanLookup | None) -> tuple[str, list[str]]:
    """The plan's name and its steps as commands (empty when no plan is known)."""
    if lookup is None:
        return "", []
    name, plan = lookup(deployment)
    if plan is None:
        return name or "", []
    variables = deployment.template_vars()
    return name or "", [step_command(step, variables) for step in plan.steps]
