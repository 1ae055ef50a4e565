"""Label values a rule names that no series has: said with the values that do exist.

A rule written for prometheus-fastapi-instrumentator (``status="5xx"``) reading a
service instrumented with starlette-exporter (``status_code="500"``) matches nothing,
forever: no error is ever seen, so nothing ever fires. ``watchdog check --prometheus``
asks Prometheus for the values of every label an equality or regex matcher names (on
the series of the same metric, and of the service when one is given; ``label!=""``
asks only that the label exists) and says:

- the series have no such label at all: an error (the rule never matches);
- no value has the *shape* of the one written (``500`` among ``2xx, 4xx``, ``5xx``
  among ``200, 404``: digits against letters): an error, with the values listed;
- otherwise a note with the values listed (an error counter's ``5xx`` series appears
  with the first error: absent is zero).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from watchdog.rulefile.promql import Matcher, Selector

SHOWN = 8  # values listed before "…"
_STATUS_LIKE = re.compile(r"^[1-5](?:\d\d|xx|XX)$")


class Values(Protocol):
    """What this needs of Prometheus: the values of a label on matching series."""

    def label_values(self, label: str, match: str) -> list[str]:
        """Values of ``label`` on series matching the selector ``match``."""
        ...


def shape(value: str) -> str:
    """``500`` → ``999``, ``5xx`` → ``9aa``: what a value looks like, not what it says."""
    return re.sub(r"[A-Za-z]", "a", re.sub(r"\d", "9", value))


def listed(values: Sequence[str]) -> str:
    """``2xx, 4xx, 5xx`` (at most :data:`SHOWN`, then ``…``)."""
    ordered = sorted(values)
    more = ", …" if len(ordered) > SHOWN else ""
    return ", ".join(ordered[:SHOWN]) + more


def value_problems(
    metric: str, scope: Sequence[Matcher], wanted: Sequence[Matcher], prom: Values
) -> list[tuple[str, bool]]:
    """``(message, is_error)`` for each matcher in ``wanted`` no series satisfies.

    ``scope``: the matchers every series must have anyway (the service's).
    """
    out: list[tuple[str, bool]] = []
    match = Selector(metric, tuple(scope)).render()
    for m in wanted:
        present = m.op == "!=" and not m.value  # `version!=""`: the label must exist
        if (m.op not in ("=", "=~") or not m.value or m.name == "__name__") and not present:
            continue
        values = prom.label_values(m.name, match)
        if not values:
            never = f"series {match} have no {m.name!r} label, so the rule never matches"
            out.append((never, True))
        elif not present and not any(_matches(m, v) for v in values):
            out.append(_absent(match, m, values))
    return out


def _matches(m: Matcher, value: str) -> bool:
    if m.op == "=":
        return value == m.value
    try:
        return re.fullmatch(m.value, value) is not None
    except re.error:
        return True  # Prometheus' RE2 said yes to it (the query parsed): do not guess


def _absent(match: str, m: Matcher, values: Sequence[str]) -> tuple[str, bool]:
    has = f"{m.name} has {listed(values)}"
    if m.op == "=" and shape(m.value) not in {shape(v) for v in values}:
        hint = ""
        if _STATUS_LIKE.match(m.value):
            hint = f' (to match either form: {m.name}=~"{m.value[0]}..")'
        return (
            f'{m.name}="{m.value}" can never match {match}: {has}, none like "{m.value}"{hint}',
            True,
        )
    return (
        f"{m.render()} matches no series of {match} right now: {has} (fine for an error "
        "counter whose series appears with its first error)",
        False,
    )
