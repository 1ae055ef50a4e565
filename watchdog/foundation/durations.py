"""Durations the way Prometheus writes them (``1h30m``, ``15s``, ``250ms``), as seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Turn ``"5m"``, ``"1h30m"``, ``"250ms"``, ``"0"``, ``90`` or ``1.5`` into seconds.

    Raises ``ValueError`` naming the accepted forms for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 15s, 5m, 1h30m")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r}: {_expected(text)}")
    return total


_WORDS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m"
    r"|hours?|hrs?|h|days?|d|weeks?|w)\b",
    re.IGNORECASE,
)


def _expected(text: str) -> str:
    """``use 5m`` when ``text`` is a duration in words (``5 min``, ``1 hour 30 minutes``)."""
    parts = []
    pos = 0
    for match in _WORDS.finditer(text):
        if text[pos : match.start()].strip(" ,"):
            return "expected e.g. 15s, 5m, 1h30m, 250ms"
        word = match.group(2).lower()
        unit = "ms" if word.startswith("ms") or word.startswith("milli") else word[0]
        parts.append(f"{match.group(1)}{unit}")
        pos = match.end()
    if parts and not text[pos:].strip():
        return f"use {''.join(parts)}"
    return "expected e.g. 15s, 5m, 1h30m, 250ms"


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style spelling of ``seconds`` (``90`` → ``1m30s``)."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    if whole == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        n, whole = divmod(whole, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type accepting any form :func:`parse_duration` takes."""
