"""``watchdog deploy status ID --watch``: the window's story, redrawn until it ends.

Each refresh clears the terminal and prints what ``deploy status`` prints (the rule
table carries a sparkline of each rule's recent values). It stops by itself once the
window reaches a terminal phase, or on Ctrl-C. With ``--json`` each refresh is one
JSON line instead (nothing is cleared), for scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any, TextIO

from watchdog.cli.render import render_detail
from watchdog.foundation.model import WindowPhase

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen


def is_terminal(detail: Any) -> bool:
    """True once the window's phase is one nothing more happens in."""
    phase = (detail.get("window") or {}).get("phase") if isinstance(detail, dict) else None
    try:
        return WindowPhase(str(phase)).terminal
    except ValueError:
        return False


def watch_status(
    fetch: Callable[[], Any],
    *,
    interval: float,
    out: TextIO,
    as_json: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
) -> int:
    """Fetch, draw, repeat every ``interval`` seconds until terminal or Ctrl-C."""
    try:
        while True:
            detail = fetch()
            if as_json:
                out.write(json.dumps(detail) + "\n")
            else:
                footer = f"\n\nrefreshed {clock()} every {interval:g}s · Ctrl-C to stop"
                out.write(CLEAR + render_detail(detail) + footer + "\n")
            out.flush()
            if is_terminal(detail):
                return 0
            sleep(interval)
    except KeyboardInterrupt:
        out.write("\n")
        return 0


def positive(text: str) -> float:
    """``--interval``: a number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text!r}")
    return value
