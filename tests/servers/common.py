"""Helpers shared by the server fixtures: free ports, waiting, process lifetimes.

The process toolkit lives in ``examples/stack.py`` (the demo and the benchmarks use it
too); this module adds what only tests need.
"""

from __future__ import annotations

import pytest

from examples.stack import find_binary, free_port, running, stop, wait_for_port

__all__ = ["HANG_GUARD", "free_port", "require_binary", "running", "stop", "wait_for_port"]

# How long a test waits for an event before calling the run hung. Only a guard: tests
# wait for the event (a phase, a journal entry, a request, a scrape), never for a guess
# at how long an idle machine takes; a busy 2-core machine may take many times longer.
HANG_GUARD = 180.0


def require_binary(name: str, *candidates: str) -> str:
    """Path of a server binary; fails the test with the install hint when missing."""
    try:
        return find_binary(name, *candidates)
    except RuntimeError as exc:
        pytest.fail(str(exc))
