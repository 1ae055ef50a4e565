"""Which deploys a rule watches: ``services`` globs and ``match`` on the deploy's labels.

A rule file, a group or a single rule may say it fits only some services::

    services: [worker, "payments-*"]        # fnmatch globs on the deployment's service
    match: {environment: production, tier: "~web|api"}   # its labels; ~ means RE2

The nearest one wins (rule, then group, then file); nothing said means every deploy.
A window's rules are chosen when it is evaluated (:meth:`RuleSet.for_deployment`), so a
service without Celery never runs, and is never warned about, the Celery rules, and one
watchdog can probe each service's own health URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from watchdog.foundation import regex

SERVICE_GLOB = r"^[A-Za-z0-9_.:*?\[\]!-]{1,128}$"
LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


class Deployed(Protocol):
    """What scoping reads of a deployment."""

    @property
    def service(self) -> str:
        """The deployed service."""
        ...

    @property
    def environment(self) -> str:
        """Where it was deployed."""
        ...

    @property
    def labels(self) -> Mapping[str, str]:
        """Its labels (from the deploy request or detection)."""
        ...


def _glob(value: str) -> str:
    if not re.fullmatch(SERVICE_GLOB, value):
        raise ValueError(
            f"{value[:130]!r} is not a service name or glob (letters, digits, _ . : - * ? [ ])"
        )
    return value


def _matcher(value: str) -> str:
    if value.startswith("~"):
        regex.check(value[1:])
    return value


Services = tuple[Annotated[str, AfterValidator(_glob)], ...]
Match = dict[
    Annotated[str, Field(pattern=LABEL_NAME)],
    Annotated[str, Field(max_length=1024), AfterValidator(_matcher)],
]


class Scope(BaseModel):
    """``services`` and ``match``, as written on a file, a group or a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    services: Services = Field((), max_length=256)
    match: Match = Field(default_factory=dict, max_length=64)

    @property
    def given(self) -> bool:
        """True when it narrows anything."""
        return bool(self.services or self.match)

    def applies(self, deployment: Deployed) -> bool:
        """True when a window of ``deployment`` should evaluate the rule."""
        if self.services and not any(fnmatchcase(deployment.service, g) for g in self.services):
            return False
        return all(_label_matches(deployment, k, v) for k, v in self.match.items())

    def scope_text(self) -> str:
        """``services api, worker; environment=production`` for messages."""
        parts = []
        if self.services:
            parts.append("services " + ", ".join(self.services))
        parts += [f"{k}={v}" for k, v in self.match.items()]
        return "; ".join(parts) or "every service"


def _label_matches(deployment: Deployed, name: str, wanted: str) -> bool:
    have = deployment.environment if name == "environment" else deployment.labels.get(name, "")
    if wanted.startswith("~"):
        return regex.compiled(wanted[1:]).fullmatch(have)
    return have == wanted


def nearest(*scopes: Scope) -> Scope:
    """The first scope that says anything (rule, group, file), else everything."""
    return next((s for s in scopes if s.given), Scope())
