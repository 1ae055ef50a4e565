"""``watchdog deploy wait ID`` and ``deploy start --wait``: the watch window as a CI gate.

The gate polls the window's detail until it reaches an outcome, printing one line per
phase change and per new journal event, and exits with a code a pipeline can branch on
(:data:`EXIT_CODES`, documented in docs/deploy.md). A window that waits for an approver
is an outcome of its own (exit 5) as soon as ``--timeout`` runs out, so a pipeline can
page the approver instead of hanging for the rest of the window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from watchdog.cli.render import clean, when
from watchdog.foundation.model import WindowPhase

# Exit codes; 1 (cannot reach the API, API error) and 2 (usage) are every command's.
EXIT_PASSED = 0
EXIT_ERROR = 1
EXIT_ROLLED_BACK = 3
EXIT_ROLLBACK_FAILED = 4
EXIT_AWAITING_APPROVAL = 5
EXIT_ABORTED = 6
EXIT_TIMEOUT = 7
EXIT_ROLLBACK_INEFFECTIVE = 8
EXIT_INCONCLUSIVE = 9
EXIT_EXPIRED_WHILE_HELD = 10
EXIT_WOULD_HAVE_ROLLED_BACK = 11

EXIT_CODES: Mapping[str, int] = {
    "passed": EXIT_PASSED,
    "rolled_back": EXIT_ROLLED_BACK,
    "rollback_failed": EXIT_ROLLBACK_FAILED,
    # rolled back, but the rules that fired still breach: the deploy was not the cause
    "rollback_ineffective": EXIT_ROLLBACK_INEFFECTIVE,
    "awaiting_approval": EXIT_AWAITING_APPROVAL,
    # the window could not judge its rules for most of its time: not a pass
    "inconclusive": EXIT_INCONCLUSIVE,
    # held by a person while a rule fired, and time ran out
    "expired_while_held": EXIT_EXPIRED_WHILE_HELD,
    # shadow mode: the rules fired; a live window would have rolled back
    "would_have_rolled_back": EXIT_WOULD_HAVE_ROLLED_BACK,
    "aborted": EXIT_ABORTED,
    "superseded": EXIT_ABORTED,
}


@dataclass
class Gate:
    """Follows one window and prints what changed since the last look."""

    out: TextIO
    last_phase: str | None = None
    seen_seq: int = 0
    printed: list[str] = field(default_factory=list)

    def show(self, detail: Mapping[str, Any]) -> str:
        """Print new events and a phase change; return the current phase."""
        window = detail.get("window") or {}
        phase = str(window.get("phase") or "unknown")
        for event in detail.get("events") or []:
            seq = int(event.get("seq") or 0)
            if seq > self.seen_seq:
                self.seen_seq = seq
                self._line(
                    f"{when(event.get('at'))} {clean(event.get('kind'))}"
                    f"{' ' + clean(event.get('rule')) if event.get('rule') else ''}: "
                    f"{clean(event.get('message'), 300)}"
                )
        if phase != self.last_phase:
            self.last_phase = phase
            self._line(f"phase: {phase}")
        return phase

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
        self.printed.append(text)


def wait_for_outcome(
    fetch: Callable[[], Mapping[str, Any]],
    *,
    interval: float,
    timeout: float | None,
    out: TextIO,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Poll until the window ends (or ``timeout`` runs out); return the exit code."""
    gate = Gate(out)
    deadline = None if timeout is None else monotonic() + timeout
    while True:
        phase = gate.show(fetch())
        if _ended(phase):
            code = EXIT_CODES.get(phase, EXIT_ERROR)
            out.write(f"outcome: {phase} (exit {code})\n")
            return code
        if deadline is not None and monotonic() >= deadline:
            code = EXIT_AWAITING_APPROVAL if phase == "awaiting_approval" else EXIT_TIMEOUT
            out.write(f"outcome: still {phase} after {timeout:g}s (exit {code})\n")
            return code
        sleep(interval)


def _ended(phase: str) -> bool:
    # An unknown phase (a newer server) ends the wait as an error rather than hanging.
    try:
        return WindowPhase(phase).terminal
    except ValueError:
        return True
