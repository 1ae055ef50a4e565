"""The global choice for missing data: fail open (the default) or fail closed.

Fail open: a source that is down, times out, errors or has no data never causes a
rollback; the rule is ``inconclusive`` and, after ``notify.blind_after`` failed polls,
people are told the watchdog is blind. Fail closed: missing data counts as a breach,
so a rule whose source stays down fires after its ``for``. A rule's own ``no_data`` /
``on_error`` always wins: the global choice only fills in the ones a rule leaves out.
"""

from __future__ import annotations

from typing import Literal

from watchdog.rulefile.load import RuleSet
from watchdog.rulefile.schema import Policy

MissingData = Literal["fail_open", "fail_closed"]
_POLICY_FIELDS = ("no_data", "on_error")


def apply_missing_data(rules: RuleSet, mode: MissingData) -> RuleSet:
    """``rules`` with the policies they do not set themselves filled in for ``mode``."""
    if mode == "fail_open":
        return rules  # the rules' own default, inconclusive, is fail-open
    out = []
    for rule in rules.rules:
        unset = {f: Policy.BREACH for f in _POLICY_FIELDS if f not in rule.model_fields_set}
        out.append(rule.model_copy(update=unset) if unset else rule)
    return RuleSet.of(out, rules.files)
