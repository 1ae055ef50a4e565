"""Regular expressions from rule files, compiled with RE2: linear time whatever the pattern.

Python's ``re`` backtracks: ``^(a+)+$`` against a 28-character line took 3.3 s and
doubled with each character, holding the GIL (a thread does not help). RE2 (the
``google-re2`` package, the engine Prometheus and Alertmanager matchers use too) runs in
time linear in the input and refuses what it cannot do that way (backreferences,
lookaround): such a pattern is a rule-file error, reported by ``watchdog check``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN = 4096  # characters; RE2 also bounds the compiled program's memory
MAX_MEM = 8 << 20  # bytes RE2 may use for one compiled pattern


class SafeRegex:
    """A compiled RE2 pattern; ``search``/``fullmatch`` answer whether it matched."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._text = _compile(pattern)
        self._bytes = _compile(pattern, binary=True)

    def search(self, text: str | bytes) -> bool:
        """Whether the pattern matches anywhere in ``text``."""
        compiled = self._bytes if isinstance(text, bytes) else self._text
        return compiled.search(text) is not None

    def fullmatch(self, text: str) -> bool:
        """Whether the pattern matches all of ``text`` (anchored, as in Alertmanager)."""
        return self._text.fullmatch(text) is not None


def check(pattern: str) -> str:
    """``pattern`` if RE2 accepts it; ValueError saying why not (for rule validation)."""
    compiled(pattern)
    return pattern


@lru_cache(maxsize=512)
def compiled(pattern: str) -> SafeRegex:
    """The compiled pattern, cached (rules are evaluated every few seconds)."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"regular expression longer than {MAX_PATTERN} characters")
    return SafeRegex(pattern)


def _compile(pattern: str, *, binary: bool = False) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would write to stderr; we raise instead
    options.max_mem = MAX_MEM
    try:
        return re2.compile(pattern.encode() if binary else pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"not a regular expression RE2 accepts ({reason}); lookaround and "
            "backreferences are not supported"
        ) from None
