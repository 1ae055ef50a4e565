"""Window-scoped PromQL: every ``[range]`` clamped to the time since the window opened.

Only the new version's evidence may judge a window. A rule written with ``[5m]`` would,
in the window's first five minutes, read the previous version's samples too: a fixed
version deployed right after a rollback would be judged on the errors of the one rolled
back. So before a live query runs, every range selector and subquery range longer than
the window's age is shortened to that age, rounded *up* to the scrape grid (a range
shorter than one scrape interval holds no sample at all, so the clamp never goes below
one). The subquery's resolution (``[5m:30s]``) is kept; string literals are left alone.

``offset`` and ``@`` modifiers are not touched: a rule that uses them reads the past on
purpose (the baseline is the one place that does, and it is never clamped).
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_UNITS["y"] = 365 * 86400.0
_DURATION = r"(?:\d+(?:ms|y|w|d|h|m|s))+"
# A string literal (skipped whole, so a "[5m]" inside a label value is not a range) or a
# range/subquery bracket with its duration captured.
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'
    r"|'(?:[^'\\]|\\.)*'"
    r"|`[^`]*`"
    rf"|\[\s*(?P<range>{_DURATION})\s*(?P<sub>:\s*(?:{_DURATION})?\s*)?\]"
)
_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


def duration_seconds(text: str) -> float:
    """A PromQL duration (``1h30m``, ``250ms``) in seconds."""
    return sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))


def promql_duration(seconds: float) -> str:
    """Seconds as a PromQL duration: whole seconds as ``Ns``, otherwise milliseconds."""
    millis = math.ceil(seconds * 1000 - 1e-6)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def clamp_limit(age: float, grid: float) -> float:
    """The longest range a window ``age`` seconds old may read: its age rounded up to
    ``grid``, and at least one grid step."""
    if grid <= 0:
        raise ValueError("grid must be > 0")
    steps = math.ceil(max(age, 0.0) / grid - 1e-9)
    return max(1, steps) * grid


def longest_range(query: str) -> float:
    """The longest range or subquery range in ``query``, in seconds (0 when none)."""
    found = [duration_seconds(m["range"]) for m in _TOKEN.finditer(query) if m["range"]]
    return max(found, default=0.0)


def clamp_ranges(query: str, age: float, grid: float) -> str:
    """``query`` with every range longer than the window's ``age`` cut to it (see the
    module doc); ranges already short enough and everything else stay as written."""
    limit = clamp_limit(age, grid)

    def substitute(match: re.Match[str]) -> str:
        text = match.group(0)
        if not match["range"] or duration_seconds(match["range"]) <= limit:
            return text
        return f"[{promql_duration(limit)}{match['sub'] or ''}]"

    return _TOKEN.sub(substitute, query)
