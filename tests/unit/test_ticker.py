"""The Ticker: a stop lets the runs in flight finish, and a cut-short run is no error.

APScheduler's own shutdown cancels runs in flight and logs each as a job that "raised an
exception" with its traceback; a clean SIGTERM printed those (CI, the ulimit test).
These tests run the real AsyncIOScheduler and wait on events, not on the clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from watchdog.plumbing.ticker import Ticker

TICK = 0.01


async def _until(ready: Callable[[], object]) -> None:
    async def turn() -> None:
        while not ready():
            await asyncio.sleep(0)

    await asyncio.wait_for(turn(), 10)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_stop_lets_the_run_in_flight_finish(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="apscheduler")
    inside, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def tick() -> None:
        inside.set()
        await release.wait()
        finished.append("tick")

    ticker = Ticker({"tick": tick}, TICK)
    ticker.start()
    await asyncio.wait_for(inside.wait(), 10)
    stopping = asyncio.create_task(ticker.stop())
    await asyncio.sleep(0)  # let stop() pause the scheduler and start waiting
    assert not stopping.done()  # it waits for the run
    assert ticker.running == ["tick"]
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished == ["tick"]
    assert ticker.running == []
    assert _errors(caplog) == []


async def test_a_run_past_the_grace_is_cut_short_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="apscheduler")
    inside = asyncio.Event()
    cut: list[str] = []

    async def probe() -> None:
        inside.set()
        try:
            await asyncio.Event().wait()  # a store that never answers
        finally:
            cut.append("probe")

    ticker = Ticker({"probe": probe}, TICK, grace=0.05)
    ticker.start()
    await asyncio.wait_for(inside.wait(), 10)
    with capture_logs() as said:
        await ticker.stop()
        await _until(lambda: cut)  # the cancelled run unwinds on the loop's next turns
    assert cut == ["probe"]
    assert [(e["log_level"], e["event"], e["jobs"]) for e in said] == [
        ("warning", "stopping: cut short the jobs still running", ["probe"])
    ]
    assert _errors(caplog) == []  # no "raised an exception", no traceback


async def test_no_run_begins_after_the_stop() -> None:
    runs = 0
    twice = asyncio.Event()

    async def tick() -> None:
        nonlocal runs
        runs += 1
        if runs >= 2:
            twice.set()

    ticker = Ticker({"tick": tick}, TICK)
    ticker.start()
    await asyncio.wait_for(twice.wait(), 10)
    await ticker.stop()
    seen = runs
    for _ in range(3):  # past several ticks: nothing more runs
        await asyncio.sleep(TICK * 5)
    assert runs == seen
    await ticker.stop()  # a second stop is harmless


async def test_a_job_that_fails_is_still_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="apscheduler")
    failed = asyncio.Event()

    async def tick() -> None:
        failed.set()
        raise RuntimeError("boom")

    ticker = Ticker({"tick": tick}, TICK)
    ticker.start()
    await asyncio.wait_for(failed.wait(), 10)
    await _until(lambda: _errors(caplog))  # APScheduler logs it when the run's task ends
    await ticker.stop()
    assert any('Job "tick' in message for message in _errors(caplog))
