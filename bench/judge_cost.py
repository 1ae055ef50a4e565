"""What judge rules cost: resident memory and CPU per evaluation.

    python -m bench.judge_cost --windows 200 --steps 120

In one fresh process: RSS with the watchdog's rule code imported (no judge yet), after
the judge's statistics (judge.stats, judge.special) are imported, and after ``--windows``
windows each evaluated ``--steps`` times with ``rules/api.yml``'s ``api-5xx-judged``
(canary and per-endpoint tracking on, six endpoints, the baseline with block moments):
the states are kept, as the engine keeps them. Also the time per evaluation.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    """This process' resident set, MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: Sequence[str] | None = None) -> str:
    """Measure and return a markdown table."""
    p = argparse.ArgumentParser(prog="python -m bench.judge_cost", description=__doc__)
    p.add_argument("--windows", type=int, default=200)
    p.add_argument("--steps", type=int, default=120)
    args = p.parse_args(argv)
    from watchdog.evaluation.evaluate import evaluate  # the rule code, no statistics yet
    from watchdog.rulefile.load import load_rules

    before = rss_mib()
    from bench.decisions_shapes import Deploy, simulate
    from bench.decisions_sim import baselines, samples

    imported = rss_mib()  # numpy for the simulated traffic
    from watchdog.judge import evaluate as _judge  # noqa: F401  (judge.special)

    with_stats = rss_mib()
    rule = next(
        r for r in load_rules([REPO / "rules" / "api.yml"]).rules if r.name == "api-5xx-judged"
    )
    from watchdog.foundation.model import RuleState

    states, evals, spent = [], 0, 0.0
    for i in range(args.windows):
        d = Deploy(index=i, shape="endpoint", rps=100.0, base_error=0.01, healthy=True)
        t = simulate(d)
        base = baselines(rule, t.n, t.e, d.endpoints)  # type: ignore[arg-type]
        state = RuleState()
        for k, s in enumerate(samples(rule, d, t.n, t.e)[: args.steps]):  # type: ignore[arg-type]
            started = time.process_time()
            state = evaluate(rule, state, s, k * 15.0, base).state
            spent += time.process_time() - started
            evals += 1
        states.append(state)
    after = rss_mib()
    return "\n".join(
        [
            "| measurement | value |",
            "|---|---:|",
            f"| RSS, rule code imported | {before:.1f} MiB |",
            f"| + numpy (the benchmark's traffic) | {imported - before:+.1f} MiB |",
            f"| + the judge's statistics (judge.special) | {with_stats - imported:+.1f} MiB |",
            f"| + {args.windows} windows' judge states, {args.steps} evaluations each "
            f"| {after - with_stats:+.1f} MiB |",
            f"| CPU time per evaluation (mean of {evals}) | {1e6 * spent / max(evals, 1):.0f} µs |",
        ]
    )


if __name__ == "__main__":
    print(main())
