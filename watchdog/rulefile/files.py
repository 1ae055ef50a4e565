"""The top of a rule file: groups of rules, each rule one of the source kinds."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from watchdog.durations import Duration
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.schema import (
    RULE_NAME,
    AlertmanagerRule,
    HttpRule,
    LogRule,
    PostgresRule,
    PrometheusRule,
    RedisRule,
)
from watchdog.rulefile.scope import Scope
from watchdog.rulefile.telemetry import LokiRule, ScrapeRule, SentryRule

Rule = Annotated[
    PrometheusRule
    | HttpRule
    | PostgresRule
    | RedisRule
    | LogRule
    | AlertmanagerRule
    | JudgeRule
    | LokiRule
    | ScrapeRule
    | SentryRule,
    Field(discriminator="source"),
]
SOURCE_KINDS = (
    "prometheus", "http", "postgres", "redis", "log", "alertmanager", "judge",
    "loki", "scrape", "sentry",
)  # fmt: skip
TARGETED_KINDS = ("postgres", "redis")  # kinds whose rules name a target from Settings


class Group(Scope):
    """A named set of rules sharing an evaluation interval (and maybe a scope:
    ``services``, ``match``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=RULE_NAME)
    interval: Duration = 15.0
    rules: list[Rule] = Field(min_length=1)


class RuleFile(Scope):
    """The top level of a rule file: its groups, and maybe the scope of all of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[Group] = Field(min_length=1)
