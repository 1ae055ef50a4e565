"""The top of a rule file: groups of rules, each rule one of the source kinds
(:data:`watchdog.sources.kinds.KINDS`)."""

from __future__ import annotations

import operator
from functools import reduce
from typing import TYPE_CHECKING, Annotated

from pydantic import ConfigDict, Field

from watchdog.foundation.durations import Duration
from watchdog.rulefile.schema import RULE_NAME, RuleBase
from watchdog.rulefile.scope import Scope
from watchdog.sources.kinds import KINDS

if TYPE_CHECKING:
    Rule = RuleBase
else:  # one model per kind, told apart by `source` (the kinds table's order)
    Rule = Annotated[
        reduce(operator.or_, (k.rule for k in KINDS.values())), Field(discriminator="source")
    ]
SOURCE_KINDS = tuple(KINDS)


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
