"""The decision benchmark in-process: shapes (bench/decisions_shapes.py) judged by the
pure rule functions, side by side with the threshold rule.

The judge rule is evaluated exactly as the engine evaluates it (:func:`watchdog.evaluation.evaluate.
evaluate` on each 15 s sample, its baseline computed from the hour before as the
rule's baseline query computes it: counts per endpoint and one-minute block moments).
The threshold rule ``api-5xx-ratio`` (5xx over all requests in the last minute ``> 5%``
for 1m) is emulated on the same counts: the ratio of two ``rate()``s over the same
range is the ratio of the increases (Prometheus' extrapolation cancels).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.decisions_shapes import (
    POST_STEPS,
    PRE_STEPS,
    STEP,
    Deploy,
    deploys,
    simulate,
)
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, Sample, SampleKind, Series, Verdict
from watchdog.rulefile.judge import ROLE, JudgeRule
from watchdog.rulefile.load import load_rules

JUDGE_PACK = Path(__file__).resolve().parents[1] / "rules" / "api.yml"

BEFORE_END = PRE_STEPS - 20  # the baseline ends 5 minutes before the deploy
BEFORE_STEPS = 240  # and spans an hour
BURST_STEPS = 1440  # burstiness: six hours
BLOCK = 20  # steps per five-minute block
VERSIONS = ("v1", "v2")


@dataclass(frozen=True)
class Result:
    """One deploy judged by one pack."""

    deploy: Deploy
    pack: str
    fired_at: float | None  # seconds after the deploy
    final: str  # the last verdict: ok | inconclusive | firing

    @property
    def caught(self) -> bool:
        d = self.deploy
        return (
            not d.healthy
            and self.fired_at is not None
            and d.onset is not None
            and self.fired_at >= d.onset
        )

    @property
    def delay(self) -> float | None:
        if not self.caught or self.fired_at is None or self.deploy.onset is None:
            return None
        return self.fired_at - self.deploy.onset

    @property
    def inconclusive(self) -> bool:
        return self.fired_at is None and self.final == "inconclusive"


def _key(labels: dict[str, str]) -> str:
    return "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def baselines(
    rule: JudgeRule, n: np.ndarray, e: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """What the rule's baseline query returns for the hour before (see JudgeRule)."""
    lo, hi = BEFORE_END - BEFORE_STEPS, BEFORE_END
    nn, ee = n[lo:hi].sum(axis=1), e[lo:hi].sum(axis=1)  # over versions: [step, endpoint]
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        labels = {"handler": name} if rule.by else {}
        out[_key({**labels, ROLE: "errors"})] = out.get(
            _key({**labels, ROLE: "errors"}), 0.0
        ) + float(ee[:, j].sum())
        out[_key({**labels, ROLE: "total"})] = out.get(
            _key({**labels, ROLE: "total"}), 0.0
        ) + float(nn[:, j].sum())
    lo = BEFORE_END - BURST_STEPS
    bn = n[lo:hi].sum(axis=(1, 2)).reshape(-1, BLOCK).sum(axis=1)
    be = e[lo:hi].sum(axis=(1, 2)).reshape(-1, BLOCK).sum(axis=1)
    served = bn > 0
    moments = {
        "m_e": be[served].sum(),
        "m_n": bn[served].sum(),
        "m_e2n": (be[served] ** 2 / bn[served]).sum(),
        "m_n2": (bn[served] ** 2).sum(),
        "m_blocks": served.sum(),
        "m_max": (be[served] / bn[served]).max() if served.any() else 0.0,
    }
    out.update({_key({ROLE: k}): float(v) for k, v in moments.items()})
    return out


def samples(rule: JudgeRule, d: Deploy, n: np.ndarray, e: np.ndarray) -> list[Sample]:
    """The live query's answer at each evaluation of the window (cumulative counters)."""
    cn, ce = np.cumsum(n, axis=0), np.cumsum(e, axis=0)
    names = d.endpoints
    out = []
    for i in range(PRE_STEPS, PRE_STEPS + POST_STEPS):
        series = []
        for v, version in enumerate(VERSIONS):
            if n[max(0, i - 20) : i + 1, v].sum() == 0:
                continue  # a version not serving lately has no fresh series
            for j, name in enumerate(names):
                ok, bad = float(cn[i, v, j] - ce[i, v, j]), float(ce[i, v, j])
                base = {"handler": name, "method": "GET", "version": version}
                roles = ["", "base_"] if (v == 0 and rule.against != "before") else [""]
                for prefix in roles:
                    for status, value in (("2xx", ok), ("5xx", bad)):
                        lab = {**base, "status": status}
                        series.append(Series(value, {**lab, ROLE: prefix + "total"}))
                        if status == "5xx":
                            series.append(Series(value, {**lab, ROLE: prefix + "errors"}))
        out.append(Sample(SampleKind.VALUES, tuple(series)))
    return out


def run_judge(rule: JudgeRule, d: Deploy, traffic_n: np.ndarray, traffic_e: np.ndarray) -> Result:
    """Every evaluation of the window, until it fires."""
    base = baselines(rule, traffic_n, traffic_e, d.endpoints)
    state, verdict = RuleState(), Verdict.INCONCLUSIVE
    for k, sample in enumerate(samples(rule, d, traffic_n, traffic_e)):
        now = k * STEP
        ev = evaluate(rule, state, sample, now, base)
        state, verdict = ev.state, ev.verdict
        if verdict is Verdict.FIRING:
            return Result(d, "judge", now, "firing")
    return Result(d, "judge", None, verdict.value)


def run_threshold(d: Deploy, n: np.ndarray, e: np.ndarray) -> Result:
    """``5xx / all over [1m] > 5%`` for 1m, every 15 s, no data is ok."""
    tn, te = n.sum(axis=(1, 2)), e.sum(axis=(1, 2))
    since = None
    for k in range(POST_STEPS):
        i = PRE_STEPS + k
        total, bad = tn[i - 3 : i + 1].sum(), te[i - 3 : i + 1].sum()
        now = k * STEP
        if total > 0 and bad / total > 0.05:
            since = now if since is None else since
            if now - since >= 60:
                return Result(d, "threshold", now, "firing")
        else:
            since = None
    return Result(d, "threshold", None, "ok")


def judge_deploys(rule: JudgeRule, items: Sequence[Deploy]) -> list[Result]:
    """Both packs on every deploy (one worker's share)."""
    out = []
    for d in items:
        traffic = simulate(d)
        out.append(run_judge(rule, d, traffic.n, traffic.e))
        out.append(run_threshold(d, traffic.n, traffic.e))
    return out


def _work(args: tuple[Path, list[Deploy]]) -> list[Result]:
    rules = load_rules([args[0]])
    rule = next(r for r in rules.rules if isinstance(r, JudgeRule) and r.errors is not None)
    return judge_deploys(rule, args[1])


def run(pack: Path, healthy: int, bad: int, seed: int, workers: int) -> list[Result]:
    """Every shape's deploys through both packs, in ``workers`` processes."""
    items = deploys(healthy, bad, seed)
    parts = [(pack, items[k::workers]) for k in range(workers)]
    if workers == 1:
        return _work(parts[0])
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return [r for part in pool.map(_work, parts) for r in part]


def main(argv: Sequence[str] | None = None) -> str:
    """Run the shapes benchmark and return its report (markdown)."""
    from bench.decisions_sim_report import report

    p = argparse.ArgumentParser(prog="python -m bench.decisions --shapes", description=__doc__)
    p.add_argument("--shapes", action="store_true", help="(selects this benchmark)")
    p.add_argument("--healthy", type=int, default=680, help="healthy deploys per shape")
    p.add_argument("--bad", type=int, default=240, help="bad deploys per shape")
    p.add_argument("--seed", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--judge-pack", type=Path, default=JUDGE_PACK)
    args = p.parse_args(argv)
    started = time.monotonic()
    results = run(args.judge_pack, args.healthy, args.bad, args.seed, args.workers)
    n = len(results) // 2
    head = (
        f"{n} deploys ({args.healthy} healthy and {args.bad} bad per shape), seed {args.seed}, "
        f"{args.workers} worker(s); wall time {time.monotonic() - started:.0f} s.\n\n"
    )
    return head + report(results)
