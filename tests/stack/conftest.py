"""The session's real stack (stack.py, procs.py) and the results of running every
scenario on it side by side (scenarios.py); the tests in this folder only read those."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.scenarios import run_all
from tests.stack.stack import start_stack


@pytest.fixture(scope="session")
def stack_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Start the stack, run every scenario at once, hand the results to the tests."""
    home = tmp_path_factory.mktemp("stack")
    started = time.monotonic()
    with start_stack(home) as stack:
        ready = time.monotonic() - started
        results = asyncio.run(run_all(stack))
    results["_timing"] = {"ready": ready, "total": time.monotonic() - started}
    # What the suite measured, for docs/rules.md and the report.
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "stack-results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True, default=str))
    yield results
