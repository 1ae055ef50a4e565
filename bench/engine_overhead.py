"""The engine's own cost per rule evaluation as the number of open windows grows.

N windows x 10 rules against an instant in-memory source (so only the watchdog's own
work is measured: scheduling, evaluate(), state persistence in SQLite, journaling).
One round = every rule of every window evaluated once. Reports the time per round and
per evaluation, and the ratio of per-evaluation cost at each N to the smallest N: a
ratio near 1 means the cost grows linearly with the work.

    python -m bench.engine_overhead --sizes 10,100,1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from watchdog.app import App
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Sample
from watchdog.plumbing.logs import configure_logging
from watchdog.settings import Settings
from watchdog.sources import SampleContext

RULES_PER_WINDOW = 10


class InstantSource:
    """Answers at once with a healthy value."""

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        return Sample.of(0.01)

    async def close(self) -> None:
        return None


def rules_file(directory: Path) -> Path:
    rules = "\n".join(
        f"      - name: r{i}\n        source: prometheus\n        query: q{i}\n"
        f'        threshold: "> 0.5"\n        action: rollback'
        for i in range(RULES_PER_WINDOW)
    )
    path = directory / "rules.yml"
    path.write_text(f"groups:\n  - name: g\n    interval: 15s\n    rules:\n{rules}\n")
    return path


async def measure(windows: int, rounds: int, directory: Path) -> dict[str, float]:
    clock = FakeClock()
    settings = Settings(
        rules=[rules_file(directory)],
        store_url=SecretStr(f"sqlite:///{directory / f'bench-{windows}.db'}"),
        supersede=False,
    )
    app = App.build(settings, clock=clock, sources={"prometheus": InstantSource()})
    parts = await app.open()
    engine = parts.engine
    for i in range(windows):
        await parts.windows.open_window(
            Deployment(f"svc{i}", "prod", "v2"), window_seconds=86400, actor="bench"
        )
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await engine.tick()
        await engine.drain()
        times.append(time.perf_counter() - started)
        clock.advance(15)
    await app.stop()
    per_round = statistics.median(times)
    return {"per_round": per_round, "per_eval": per_round / (windows * RULES_PER_WINDOW)}


def run(sizes: list[int], rounds: int) -> list[dict[str, float]]:
    """Measure every size in one run; returns one row per size."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            result = asyncio.run(measure(n, rounds, Path(tmp)))
            rows.append({"windows": n, **result})
    base = rows[0]["per_eval"]
    for row in rows:
        row["ratio"] = row["per_eval"] / base
    return rows


def table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| windows | evaluations per round | median round | per evaluation | ratio to smallest |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {int(r['windows'])} | {int(r['windows']) * RULES_PER_WINDOW} "
            f"| {r['per_round'] * 1000:.1f} ms | {r['per_eval'] * 1e6:.0f} µs | {r['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    configure_logging("warning", "console")
    rows = run([int(s) for s in args.sizes.split(",")], args.rounds)
    out = table(rows)
    print(out)
    return out


if __name__ == "__main__":
    main()
