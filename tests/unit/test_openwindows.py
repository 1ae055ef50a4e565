"""The engine's view of open windows: what this process does shows at once, what another
replica sharing the store does within REFRESH seconds; nothing is told about a window
another replica aborted. A fake clock, the real App and store; nothing sleeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, EventKind, Sample, Window, WindowPhase, new_id
from watchdog.lifecycle.openwindows import REFRESH
from watchdog.sources import SampleContext

RULES = """\
groups:
  - name: api
    interval: 1s
    rules:
      - name: errors
        source: prometheus
        query: errors
        threshold: "> 0.05"
        action: notify
"""


class Source:
    def __init__(self) -> None:
        self.value = 0.0
        self.windows: list[str] = []

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        self.windows.append(ctx.window_id)
        return Sample.of(self.value)

    async def close(self) -> None:
        return None


async def test_windows_of_this_process_at_once_of_another_replica_within_refresh(
    tmp_path: Path,
) -> None:
    clock, source = FakeClock(), Source()
    settings = app_settings(tmp_path, RULES, window=3600)
    async with opened(settings, clock=clock, sources={"prometheus": source}) as parts:
        engine = parts.engine
        await engine.tick()  # the view is read whole once
        mine = await parts.windows.open_window(
            Deployment("api", "prod", "v2", "v1"), window_seconds=None, actor="t"
        )
        # another replica's window: only in the store
        now = clock.now()
        theirs = Window(
            new_id(), Deployment("web", "prod", "v2", "v1"), WindowPhase.WATCHING, now,
            now + 3600, now,
        )  # fmt: skip
        await parts.store.insert_window(theirs)
        clock.advance(1)
        await engine.tick()
        await engine.drain()
        assert source.windows == [mine.id]
        clock.advance(REFRESH)
        source.windows.clear()
        await engine.tick()
        await engine.drain()
        assert sorted(source.windows) == sorted([mine.id, theirs.id])


async def test_no_transition_is_told_for_a_window_another_replica_aborted(
    tmp_path: Path,
) -> None:
    clock, source = FakeClock(), Source()
    settings = app_settings(tmp_path, RULES, window=3600)
    async with opened(settings, clock=clock, sources={"prometheus": source}) as parts:
        engine = parts.engine
        window = await parts.windows.open_window(
            Deployment("api", "prod", "v2", "v1"), window_seconds=None, actor="t"
        )
        await engine.tick()
        await engine.drain()
        # aborted elsewhere: this replica's view still holds the window for a moment
        assert await parts.store.set_phase(window.id, WindowPhase.ABORTED, at=clock.now())
        source.value = 1.0  # would fire
        clock.advance(1)
        await engine.tick()
        await engine.drain()
        kinds = [e.kind for e in await parts.store.list_events(window.id)]
        assert EventKind.RULE_FIRING not in kinds
        source.windows.clear()
        clock.advance(1)
        await engine.tick()
        await engine.drain()
        assert source.windows == []  # dropped from the view when it was re-read
