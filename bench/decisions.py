"""How often do the rule packs decide right? Labelled deploys through `watchdog replay`.

    python -m bench.decisions --healthy 2000 --bad 1000

Generates seeded deploy scenarios (bench/decisions_data.py), writes them as OpenMetrics,
backfills them into a real Prometheus with ``promtool tsdb create-blocks-from
openmetrics``, then judges every deploy's 30-minute window with the Replayer (what
``watchdog replay`` runs) twice: once with the threshold rules
(rules/alternatives/api-threshold.yml, shipped as the default before), once with the
judge rules (rules/api.yml, the default pack). Prints, per pack, false rollbacks over the
healthy deploys (with the one-sided 95 % upper bound), regressions caught, the
detection delay after the fault (p50/p95), and how many windows ended inconclusive,
overall and per traffic band.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.decisions_data import HISTOGRAMS, PRE, Scenario, openmetrics, scenarios
from examples.stack import find_binary, free_port, running
from watchdog.evaluation.replay import Replayer, ReplayResult
from watchdog.foundation.model import Deployment
from watchdog.rulefile.load import RuleSet, load_rules
from watchdog.sources.prometheus import PrometheusSource

REPO = Path(__file__).resolve().parents[1]
THRESHOLD_PACK = REPO / "rules" / "alternatives" / "api-threshold.yml"
JUDGE_PACK = REPO / "rules" / "api.yml"
WINDOW = 1800.0
CHUNK_SPACING = 4 * 3600  # each chunk of deploys gets its own 2h-aligned time range


@dataclass
class Outcome:
    """One deploy judged by one pack."""

    scenario: Scenario
    rollback_at: float | None  # seconds after the deploy
    final: dict[str, str] = field(default_factory=dict)  # rule -> last verdict

    @property
    def inconclusive(self) -> bool:
        """No rollback, and a rule ended the window unable to tell."""
        return self.rollback_at is None and "inconclusive" in self.final.values()

    @property
    def caught(self) -> bool:
        """A bad deploy rolled back once its fault had started."""
        s = self.scenario
        return self.rollback_at is not None and s.onset is not None and self.rollback_at >= s.onset

    @property
    def delay(self) -> float | None:
        """Seconds from the fault to the rollback."""
        if not self.caught or self.scenario.onset is None or self.rollback_at is None:
            return None
        return self.rollback_at - self.scenario.onset


def packs(threshold: Path, judge: Path) -> dict[str, RuleSet]:
    """The rollback rules of each pack that Prometheus history can replay."""
    out = {}
    for name, path in (("threshold", threshold), ("judge", judge)):
        rules = load_rules([path])
        kept = [r for r in rules.rules if r.source in {"prometheus", "judge"}]
        out[name] = RuleSet.of(kept, rules.files)
    return out


def histogram_names(rule_sets: Sequence[RuleSet]) -> tuple[str, ...]:
    """Histograms the rules name (``x_bucket``): the data must carry every one."""
    names = set(HISTOGRAMS)
    for rs in rule_sets:
        for rule in rs.rules:
            names.update(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)_(?:bucket|count)\b", rule.query))  # type: ignore[attr-defined]
    return tuple(sorted(names))


def backfill(
    items: list[Scenario], data: Path, work: Path, chunk: int, seed: int, hists: tuple[str, ...]
) -> list[float]:
    """Write the scenarios chunk by chunk into TSDB blocks; returns each deploy's time."""
    promtool = find_binary("promtool")
    chunks = math.ceil(len(items) / chunk)
    base = (time.time() - 4 * 3600 - chunks * CHUNK_SPACING) // 7200 * 7200
    deploy_at = []
    for c in range(chunks):
        part = items[c * chunk : (c + 1) * chunk]
        t0 = base + c * CHUNK_SPACING + PRE
        path = work / f"chunk{c}.om"
        with path.open("w") as f:
            f.writelines(openmetrics(part, t0, seed, hists))
            f.write("# EOF\n")
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(data)],
            check=True,
            capture_output=True,
        )
        path.unlink()
        deploy_at += [t0] * len(part)
    return deploy_at


def _final(result: ReplayResult, rules: RuleSet) -> dict[str, str]:
    final = {r.name: "ok" for r in rules.rules}
    for e in result.events:
        if e.kind in {"pending", "firing", "inconclusive"}:
            final[e.rule] = e.kind
        elif e.kind == "resolved":
            final[e.rule] = "ok"
    return final


async def judge_all(
    url: str,
    rule_sets: dict[str, RuleSet],
    items: list[Scenario],
    deploy_at: list[float],
    concurrency: int,
) -> dict[str, list[Outcome]]:
    """Replay every deploy's window with every pack."""
    source = PrometheusSource(url, timeout=60, retries=2, concurrency=concurrency)
    gate = asyncio.Semaphore(concurrency * 2)
    replayer = Replayer(source, variables={"service_label": "service"})  # the default setting
    done = 0

    async def one(pack: str, s: Scenario, t0: float) -> Outcome:
        nonlocal done
        async with gate:
            dep = Deployment(s.service, "production", "v2", "v1")
            result = await replayer.run(rule_sets[pack], dep, t0, t0 + WINDOW)
        done += 1
        if done % 500 == 0:
            print(f"  {done} windows replayed", file=sys.stderr, flush=True)
        at = None if result.rollback_at is None else result.rollback_at - t0
        return Outcome(s, at, _final(result, rule_sets[pack]))

    try:
        # Both packs at once: the threshold pack's work is mostly Prometheus', the
        # judge's mostly this process', so interleaving them keeps both cores busy.
        jobs = [(pack, s, t) for s, t in zip(items, deploy_at, strict=True) for pack in rule_sets]
        done_all = await asyncio.gather(*(one(pack, s, t) for pack, s, t in jobs))
        out: dict[str, list[Outcome]] = {pack: [] for pack in rule_sets}
        for (pack, _, _), outcome in zip(jobs, done_all, strict=True):
            out[pack].append(outcome)
        return out
    finally:
        await source.close()


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.decisions", description=__doc__)
    p.add_argument("--healthy", type=int, default=2000)
    p.add_argument("--bad", type=int, default=1000)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--chunk", type=int, default=500, help="deploys per backfilled file")
    p.add_argument("--concurrency", type=int, default=4, help="Prometheus queries at once")
    p.add_argument("--threshold-pack", type=Path, default=THRESHOLD_PACK)
    p.add_argument("--judge-pack", type=Path, default=JUDGE_PACK)
    return p.parse_args(argv)


@contextlib.contextmanager
def serve_prometheus(data: Path, work: Path) -> Iterator[str]:
    """A real Prometheus over the backfilled blocks (nothing scraped); yields its URL."""
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text("global: {scrape_interval: 15s}\nscrape_configs: []\n")
    argv = [
        find_binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=30d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with running(argv, work / "prometheus.log", port, timeout=120):
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, deadline=time.monotonic() + 120)
        yield url


def _wait_ready(url: str, deadline: float) -> None:
    """Prometheus listens before its TSDB is loaded; queries before ``/-/ready`` fail."""
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"Prometheus at {url} not ready")


def run(args: argparse.Namespace) -> tuple[dict[str, list[Outcome]], dict[str, float]]:
    """Generate, backfill, serve, replay; returns the outcomes and the phase timings."""
    rule_sets = packs(args.threshold_pack, args.judge_pack)
    items = scenarios(args.healthy, args.bad, args.seed)
    timings: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="decisions-"))
    try:
        started = time.monotonic()
        data = work / "data"
        hists = histogram_names(list(rule_sets.values()))
        deploy_at = backfill(items, data, work, args.chunk, args.seed, hists)
        timings["generate + backfill"] = time.monotonic() - started
        with serve_prometheus(data, work) as url:
            started = time.monotonic()
            results = asyncio.run(judge_all(url, rule_sets, items, deploy_at, args.concurrency))
            timings["replay"] = time.monotonic() - started
        return results, timings
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark and return its report (markdown); ``--shapes``: the traffic
    shapes judged in-process (bench/decisions_sim.py)."""
    from bench.decisions_report import report

    if argv is None:
        argv = sys.argv[1:]
    if "--shapes" in argv:
        from bench.decisions_sim import main as shapes

        return shapes(argv)
    args = parse(argv)
    started = time.monotonic()
    results, timings = run(args)
    total = time.monotonic() - started
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    return (
        f"{args.healthy} healthy and {args.bad} bad deploys, seed {args.seed}; "
        f"wall time {total:.0f} s ({phases}).\n\n" + report(results)
    )


if __name__ == "__main__":
    print(main())
