"""Rollback plans as configured: named, ordered steps, each run by an executor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchdog.foundation.durations import Duration

if TYPE_CHECKING:
    from watchdog.foundation.model import Deployment


class StepBase(BaseModel):
    """Fields every step has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    timeout: Duration = 30.0
    retries: int = Field(3, ge=0, le=20)  # extra attempts after a transient failure
    backoff: Duration = 1.0  # first retry delay; doubles each attempt, capped at 30 s
    # Safe to run again when a crash left its outcome unknown ("in doubt")? None: the
    # kind's default (``repeatable``: only ``verify``, which only reads). An in-doubt
    # step that is not is never re-run: the window ends rollback_failed, "verify
    # manually" (watchdog/pipeline/recovery.py), unless its evidence settles it.
    idempotent: bool | None = None

    repeatable: ClassVar[bool] = False

    @property
    def safe_to_repeat(self) -> bool:
        """Whether recovery may re-run this step after a crash left its outcome unknown."""
        return self.repeatable if self.idempotent is None else self.idempotent


class HttpStep(StepBase):
    """Call an HTTP endpoint. URL, header values and JSON string values are templated
    (``{{ service }}`` …, URL-escaped in the URL); the host must be one the operator
    allowed in settings (``http_allowed_hosts``)."""

    kind: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json")
    expect_status: str = "2xx"

    # Every request carries the same ``Idempotency-Key: <window>:<step>``, but many deploy
    # endpoints ignore it and would roll back twice: a request in doubt is not sent again
    # unless the plan says ``idempotent: true``; recovery checks the target's version
    # (a later ``verify`` step) first (watchdog/pipeline/evidence.py).


class CommandStep(StepBase):
    """Run a program with an argv list (never through a shell). Each argument is
    templated; values are checked against the safe pattern first."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


# --- platform executors (actions/render.py, compose.py, kubernetes.py, verify.py) ----


class RenderStep(StepBase):
    """Roll a Render service back to its previous successful deploy through Render's API,
    optionally switch auto-deploy off, then follow the new deploy until live or failed."""

    kind: Literal["render"]
    service_id: str  # srv-…; templated
    deploy_id: str | None = None  # roll back to this deploy instead of the previous live one
    disable_auto_deploy: bool = True  # so the next push does not bring the bad build back
    poll_interval: Duration = 5.0
    timeout: Duration = 900.0  # a Render deploy takes minutes


class ToolStep(StepBase):
    """A platform CLI run by argv (never a shell) with a minimal environment."""

    binary: str | None = None  # defaults to the tool's name, found on PATH
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)  # templated values
    inherit_env: list[str] = Field(default_factory=list)  # names copied from our environment


class ComposeStep(ToolStep):
    """Re-pin a Compose service's image to the previous tag and ``docker compose up -d`` it.

    The pin is an override file (``override``) written next to the project, so the
    operator's compose files are never edited."""

    kind: Literal["compose"]
    service: str
    image: str  # e.g. ghcr.io/acme/api:{{ previous_version }}
    files: list[str] = Field(default_factory=list)  # -f FILE…; empty = compose's default
    project_directory: str | None = None
    project_name: str | None = None
    override: str = "compose.rollback.yml"  # relative to project_directory (or cwd)
    timeout: Duration = 300.0


class KubernetesStep(ToolStep):
    """``kubectl rollout undo deployment/NAME`` then ``rollout status`` until it settles."""

    kind: Literal["kubernetes"]
    deployment: str
    namespace: str = "default"
    context: str | None = None
    to_revision: int | None = Field(None, ge=1)
    timeout: Duration = 300.0


class AlembicStep(ToolStep):
    """``alembic downgrade REVISION``. Always a data-loss risk: a plan holding it needs
    approval."""

    kind: Literal["alembic"]
    revision: str  # templated, e.g. a revision id or -1
    config: str = "alembic.ini"
    timeout: Duration = 600.0

    data_loss: ClassVar[bool] = True


class VerifyStep(StepBase):
    """Check the previous version is the one serving before calling the rollback done.

    Reads ``json_field`` of ``url`` (an HTTP JSON endpoint), or the ``label`` of the
    series ``query`` returns from Prometheus (a ``build_info``-style metric), until it
    equals ``expect`` or the step's timeout runs out."""

    kind: Literal["verify"]
    url: str | None = Field(None, pattern=r"^https?://")
    json_field: str = "version"
    query: str | None = None
    label: str = "version"
    expect: str = "{{ previous_version }}"
    poll_interval: Duration = 2.0
    timeout: Duration = 120.0
    retries: int = Field(0, ge=0, le=20)

    repeatable: ClassVar[bool] = True  # it only reads

    @model_validator(mode="after")
    def _one_source(self) -> VerifyStep:
        if (self.url is None) == (self.query is None):
            raise ValueError("verify step needs exactly one of url or query")
        return self


Step = Annotated[
    HttpStep | CommandStep | RenderStep | ComposeStep | KubernetesStep | AlembicStep | VerifyStep,
    Field(discriminator="kind"),
]
DATA_LOSS_KINDS = frozenset({"alembic"})
"""Step kinds that can lose data: any plan holding one needs approval."""


class Plan(BaseModel):
    """A named rollback plan: steps run in order; the first permanent failure stops it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(min_length=1)
    data_loss_risk: bool = False  # a plan that can lose data needs approval to run
    # How long to watch the restored version after this plan ran (None: the setting's);
    # a platform that takes minutes to settle wants longer.
    confirm_for: Annotated[Duration, Field(ge=0, le=86400)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _risky_steps(cls, data: Any) -> Any:
        # A migration downgrade can drop columns and rows: the plan is risky whatever the
        # operator wrote, so it can never run without an approver.
        if isinstance(data, dict):
            kinds = {
                s.get("kind") if isinstance(s, dict) else getattr(s, "kind", None)
                for s in data.get("steps") or []
            }
            if kinds & DATA_LOSS_KINDS:
                data = {**data, "data_loss_risk": True}
        return data


def plan_for(
    deployment: Deployment, plans: Mapping[str, Plan], default: str | None
) -> tuple[str | None, Plan | None]:
    """The one decision of which plan a rollback runs: the deployment's, else the default.

    Returns the plan's name (None when neither names one) and the plan (None when that
    name is not configured).
    """
    name = deployment.plan or default
    return name, (plans.get(name) if name else None)
