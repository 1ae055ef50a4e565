"""What a rule's numbers measure, and how to print them: ``0.2924`` → ``29.2 %``.

A rule may say its unit (``unit: ratio``); without one it is inferred from the rule's
name and query: a judge rule and a ``*ratio*`` / ``*5xx*`` / ``*error*`` rule whose
bound is at most 1 measures a ratio; ``*_seconds*`` / ``*latency*`` / ``*duration*``
seconds; ``*_ms*`` / ``*millis*`` milliseconds. Anything else prints as a plain number:
a wrong guess would be worse than none.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

Unit = Literal["ratio", "percent", "seconds", "milliseconds", "bytes", "count"]
UNITS: tuple[Unit, ...] = ("ratio", "percent", "seconds", "milliseconds", "bytes", "count")

_SECONDS = re.compile(r"_seconds|latency|duration|_secs?\b", re.IGNORECASE)
_MILLIS = re.compile(r"_ms\b|millis", re.IGNORECASE)
_RATIO = re.compile(r"ratio|5xx|error|fail|fraction|availability", re.IGNORECASE)


def infer_unit(
    name: str, query: str | None, bound: float | None, *, source: str = "", given: str | None
) -> Unit:
    """The unit the rule said, else the one its name, query and bound suggest."""
    if given in UNITS:
        return given
    if source == "judge":
        return "ratio"
    text = f"{name} {query or ''}"
    if _MILLIS.search(text):
        return "milliseconds"
    if _SECONDS.search(text):
        return "seconds"
    if _RATIO.search(text) and bound is not None and 0 <= bound <= 1:
        return "ratio"
    return "count"


def rule_unit(rule: Any) -> Unit:
    """A loaded rule's unit: as written, else inferred from its name, query and bound."""
    clauses = rule.threshold.clauses
    bound = clauses[0].bound(None) if clauses else None
    query = getattr(rule, "query", None)
    return infer_unit(
        rule.name,
        query if isinstance(query, str) else None,
        bound,
        source=rule.source,
        given=rule.unit,
    )


def _trim(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def seconds_text(seconds: float) -> str:
    """``0.45`` → ``450 ms``, ``44.98`` → ``45 s``, ``135`` → ``2 m 15 s``."""
    if not math.isfinite(seconds):
        return "-"
    if abs(seconds) < 1:
        return f"{_trim(seconds * 1000)} ms"
    if abs(seconds) < 10:
        return f"{seconds:.2g} s"
    if abs(seconds) < 60:
        return f"{seconds:.0f} s"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} m {secs} s" if secs else f"{minutes} m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} m" if minutes else f"{hours} h"


def _bytes(value: float) -> str:
    for suffix in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{_trim(value)} {suffix}"
        value /= 1024
    return f"{_trim(value)} TiB"


def value_text(value: float | None, unit: str) -> str:
    """A value in its unit, ``-`` when there is none."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "ratio":
        return f"{_trim(100 * value)} %"
    if unit == "percent":
        return f"{_trim(value)} %"
    if unit == "seconds":
        return seconds_text(value)
    if unit == "milliseconds":
        return seconds_text(value / 1000)
    if unit == "bytes":
        return _bytes(value)
    return f"{value:.4g}"


def axis_label(unit: str) -> str:
    """The short unit name beside a graph's value axis (empty for plain numbers)."""
    return {"ratio": "%", "percent": "%", "seconds": "s", "milliseconds": "ms"}.get(
        unit, "bytes" if unit == "bytes" else ""
    )
