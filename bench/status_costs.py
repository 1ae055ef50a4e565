"""What the status page, its graphs and replay cost, measured side by side in one run.

* Store writes per evaluation on a SQLite file: the rule state alone (as before rule
  points existed) versus the state plus the new rule point (the series already at its
  KEEP_POINTS bound, so every write also prunes).
* Rendering one window's section (10 rules, each with READ_POINTS points) as HTML+SVG.
* Replay: evaluations per second through the pure evaluate() over an in-memory history.

    python -m bench.status_costs --writes 2000 --renders 50 --steps 2000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from watchdog.evaluation.replay import Replayer, grid
from watchdog.foundation.model import (
    Deployment,
    Event,
    EventKind,
    RuleState,
    Verdict,
    Window,
    WindowPhase,
)
from watchdog.lifecycle.control import RuleView, WindowDetail
from watchdog.rulefile.load import RuleSet
from watchdog.rulefile.schema import PrometheusRule
from watchdog.store.base import KEEP_POINTS, READ_POINTS, RulePoint
from watchdog.store.sqlite import SqliteStore
from watchdog.web.status_html import window_section

RULES = 10
WINDOW = Window("w1", Deployment("api", "prod", "v2"), WindowPhase.WATCHING, 0.0, 1e9, 0.0)


async def store_writes(writes: int, directory: Path) -> tuple[float, float]:
    """Seconds per evaluation: state only, then state + point (at the bound, pruning)."""
    store = SqliteStore(str(directory / "bench.db"))
    await store.open()
    await store.insert_window(WINDOW)
    state = RuleState(verdict=Verdict.OK, last_value=0.01)
    for i in range(KEEP_POINTS):
        await store.add_rule_point("w1", "r", RulePoint(float(i), 0.01, Verdict.OK))
    started = time.perf_counter()
    for _ in range(writes):
        await store.save_rule_state("w1", "r", state)
    alone = (time.perf_counter() - started) / writes
    started = time.perf_counter()
    for i in range(writes):
        await store.save_rule_state("w1", "r", state)
        await store.add_rule_point("w1", "r", RulePoint(KEEP_POINTS + i, 0.01, Verdict.OK))
    both = (time.perf_counter() - started) / writes
    await store.close()
    return alone, both


def render(renders: int) -> float:
    """Seconds to render one window section with RULES rules of READ_POINTS points."""
    view = RuleView(
        "r", "g", "prometheus", "rollback", "critical", "> 0.05", 60.0, 15.0,
        Verdict.PENDING, 0.07, 0.07, 10.0, 40.0, None, None, 0.05,
    )  # fmt: skip
    rules = [RuleView(**{**view.__dict__, "name": f"r{i}"}) for i in range(RULES)]
    points = {
        f"r{i}": [RulePoint(float(t), (t % 17) / 100, Verdict.OK) for t in range(READ_POINTS)]
        for i in range(RULES)
    }
    events = [Event("w1", float(i), EventKind.RULE_PENDING, f"event {i}") for i in range(30)]
    detail = WindowDetail(WINDOW, rules, events, points)
    started = time.perf_counter()
    for _ in range(renders):
        window_section(detail, 100.0, link=False)
    return (time.perf_counter() - started) / renders


class History:
    async def query_range(self, query: str, start: float, end: float, step: float) -> Any:
        return [({}, [(t, 0.01) for t in grid(start, end, step)])]


def replay_rate(steps: int) -> float:
    """Evaluations per second of a replay of RULES rules over ``steps`` intervals."""
    rules = RuleSet.of(
        PrometheusRule(name=f"r{i}", source="prometheus", query=f"q{i}", threshold="> 0.5")
        for i in range(RULES)
    )
    started = time.perf_counter()
    result = asyncio.run(Replayer(History()).run(rules, WINDOW.deployment, 0.0, steps * 15.0))
    return result.evaluations / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        alone, both = asyncio.run(store_writes(args.writes, Path(tmp)))
    page = render(args.renders)
    rate = replay_rate(args.steps)
    out = "\n".join(
        [
            "| measurement | value | ratio |",
            "|---|---:|---:|",
            f"| SQLite write per evaluation, state only | {alone * 1e6:.0f} µs | 1.00x |",
            f"| SQLite write per evaluation, state + rule point (pruning) | {both * 1e6:.0f} µs "
            f"| {both / alone:.2f}x |",
            f"| render a window section, {RULES} rules x {READ_POINTS} points | "
            f"{page * 1000:.1f} ms | |",
            f"| replay, {RULES} rules x {args.steps} steps | {rate:,.0f} evaluations/s | |",
        ]
    )
    print(out)
    return out


if __name__ == "__main__":
    main()
