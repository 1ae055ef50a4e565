"""Rollback plans as configured: named, ordered steps, each run by an executor."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from watchdog.durations import Duration


class StepBase(BaseModel):
    """Fields every step has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    timeout: Duration = 30.0
    retries: int = Field(3, ge=0, le=20)  # extra attempts after a transient failure
    backoff: Duration = 1.0  # first retry delay; doubles each attempt, capped at 30 s


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


class CommandStep(StepBase):
    """Run a program with an argv list (never through a shell). Each argument is
    templated; values are checked against the safe pattern first."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


Step = Annotated[HttpStep | CommandStep, Field(discriminator="kind")]


class Plan(BaseModel):
    """A named rollback plan: steps run in order; the first permanent failure stops it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(min_length=1)
    data_loss_risk: bool = False  # a plan that can lose data needs approval to run
