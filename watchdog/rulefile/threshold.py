"""The threshold grammar: a tiny parser, never ``eval``.

::

    threshold := clause ( "and" clause )*
    clause    := op operand
    op        := ">" | ">=" | "<" | "<=" | "==" | "!="
    operand   := term ( ("+" | "-") number )?
    term      := number [ "*" "baseline" ] | "baseline" [ "*" number ]
    number    := decimal or scientific literal, optionally followed by "%" (÷ 100)

Examples: ``> 0.05``, ``> 5%``, ``>= 2 * baseline``, ``> baseline + 0.5``,
``> 2 and > 2 * baseline``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?%?"
_CLAUSE = re.compile(
    rf"""^\s*(?P<op>>=|<=|==|!=|>|<)\s*
    (?:
        (?P<factor>{_NUM})\s*\*\s*baseline
      | baseline(?:\s*\*\s*(?P<factor2>{_NUM}))?
      | (?P<const>{_NUM})
    )
    (?:\s*(?P<sign>[-+])\s*(?P<offset>{_NUM}))?\s*$""",
    re.VERBOSE,
)


def _number(text: str) -> float:
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return float(text)


@dataclass(frozen=True)
class Clause:
    """``op (factor * baseline | const) [+ offset]``."""

    op: str
    const: float = 0.0
    factor: float | None = None  # set when the clause is relative to the baseline
    offset: float = 0.0

    def bound(self, baseline: float | None) -> float | None:
        """The number a value is compared with, or None when the baseline is missing."""
        if self.factor is None:
            return self.const + self.offset
        if baseline is None or not math.isfinite(baseline):
            return None
        return self.factor * baseline + self.offset

    def describe(self) -> str:
        """Canonical spelling."""
        if self.factor is None:
            rhs = f"{self.const:g}"
        else:
            rhs = "baseline" if self.factor == 1 else f"{self.factor:g} * baseline"
        if self.offset:
            rhs += f" {'+' if self.offset > 0 else '-'} {abs(self.offset):g}"
        return f"{self.op} {rhs}"


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold: every clause must hold for a breach."""

    clauses: tuple[Clause, ...]
    text: str

    @property
    def uses_baseline(self) -> bool:
        """True when some clause is relative to the baseline."""
        return any(c.factor is not None for c in self.clauses)

    @property
    def absolute(self) -> tuple[Clause, ...]:
        """The clauses that do not depend on the baseline."""
        return tuple(c for c in self.clauses if c.factor is None)

    def breached(self, value: float, baseline: float | None) -> bool | None:
        """True if ``value`` breaches; None when a needed baseline is missing.

        Without a baseline, a threshold that also has absolute clauses
        (``> 2 and > 2 * baseline``) is judged on those alone: the absolute threshold
        is the fallback. NaN never breaches and never passes: the caller treats it as
        no data.
        """
        clauses = self.clauses
        if any(c.bound(baseline) is None for c in clauses):
            clauses = self.absolute
            if not clauses:
                return None
        result = True
        for clause in clauses:
            bound = clause.bound(baseline)
            assert bound is not None  # only absolute clauses are left when it is missing
            result = result and _OPS[clause.op](value, bound)
        return result

    def describe(self, baseline: float | None = None) -> str:
        """Human form, with the baseline's value filled in when known."""
        parts = []
        for c in self.clauses:
            text = c.describe()
            bound = c.bound(baseline)
            if c.factor is not None and bound is not None:
                text += f" (= {bound:.4g})"
            parts.append(text)
        return " and ".join(parts)


def parse_threshold(text: str) -> Threshold:
    """Parse ``text``; raises ``ValueError`` saying what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("threshold must be a string such as '> 0.05' or '>= 2 * baseline'")
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(part)
        if match is None:
            raise ValueError(
                f"invalid threshold {part.strip()!r}: expected OP NUMBER, OP N * baseline "
                "or OP baseline [* N] [+ N], with OP one of > >= < <= == !="
            )
        clauses.append(_clause(match))
    return Threshold(tuple(clauses), text.strip())


def _clause(match: re.Match[str]) -> Clause:
    factor_text = match.group("factor") or match.group("factor2")
    has_baseline = "baseline" in match.group(0)
    offset = _number(match.group("offset")) if match.group("offset") else 0.0
    if match.group("sign") == "-":
        offset = -offset
    if has_baseline:
        factor = _number(factor_text) if factor_text else 1.0
        return Clause(match.group("op"), factor=factor, offset=offset)
    return Clause(match.group("op"), const=_number(match.group("const")), offset=offset)
