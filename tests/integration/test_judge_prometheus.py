"""The judge on a real Prometheus: the live path and `watchdog replay` agree.

Two deploys with a known history are backfilled (promtool) into a real Prometheus: a
healthy one at 5 requests/s with a cold-start blip, and one whose 5xx proportion goes
from 1 % to 10 % at the deploy, at 100 requests/s. The live path (instant queries at
each evaluation instant, as the engine makes them, and the baseline captured the way
a window opening captures it) and the Replayer (range queries) must reach the same
verdicts at the same instants; the bad deploy fires, the healthy one never does.
A canary judged against the previous version serving beside it. Then the benchmark runs
at tiny size (`make test` keeps it from rotting).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import decisions
from bench.decisions_data import HISTOGRAMS, Scenario
from tests.rules import ERRORS_5XX, REQUESTS
from tests.rules import rules as rule_file
from watchdog.evaluation.evaluate import evaluate
from watchdog.evaluation.replay import Replayer
from watchdog.foundation.model import Deployment, RuleState, SampleKind, Verdict
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.load import load_rules
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.integration

PACK = Path(__file__).resolve().parents[2] / "rules" / "api.yml"
SETTINGS_VARS = {"service_label": "service"}  # what the settings give rule templates
HEALTHY = Scenario(index=1, rps=5.0, base_error=0.01, kind="healthy", blip=(40.0, 3.0))
BAD = Scenario(
    index=2, rps=100.0, base_error=0.01, kind="step_mult", onset=0.0, new_error=0.10, reset=True
)


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[str, float]]:
    work = Path(tempfile.mkdtemp(prefix="judge-"))
    data = work / "data"
    deploy_at = decisions.backfill([HEALTHY, BAD], data, work, 2, 7, HISTOGRAMS)
    with decisions.serve_prometheus(data, work) as url:
        yield url, deploy_at[0]


async def live(url: str, rule: JudgeRule, dep: Deployment, t0: float) -> list[tuple[float, str]]:
    """What the engine does: baseline at open, then sample + evaluate at each interval."""
    source = PrometheusSource(url, timeout=10, retries=1, concurrency=2)
    ctx = SampleContext("w", {**dep.template_vars(), **SETTINGS_VARS}, t0, live=False)
    try:
        assert rule.baseline is not None
        base = await source.sample(
            rule.baseline_probe(),
            SampleContext("w", ctx.variables, t0 - rule.baseline.offset, live=False),
        )
        assert base.kind is SampleKind.VALUES
        baselines = {s.key: s.value for s in base.series}
        state, out, k = RuleState(), [], 0
        while k * rule.effective_interval <= 1800:
            at = t0 + k * rule.effective_interval
            sample = await source.sample(rule, SampleContext("w", ctx.variables, at))
            ev = evaluate(rule, state, sample, at, baselines)
            if ev.verdict is not state.verdict:
                out.append((at, ev.verdict.value))
            state, k = ev.state, k + 1
            if ev.verdict is Verdict.FIRING:
                break
        return out
    finally:
        await source.close()


async def replayed(
    url: str, rule: JudgeRule, dep: Deployment, t0: float
) -> list[tuple[float, str]]:
    source = PrometheusSource(url, timeout=10, retries=1, concurrency=2)
    try:
        rules = load_rules([PACK])
        one = type(rules).of([r for r in rules.rules if r.name == rule.name])
        result = await Replayer(source, variables=SETTINGS_VARS).run(one, dep, t0, t0 + 1800)
    finally:
        await source.close()
    names = {"resolved": "ok"}
    return [(e.at, names.get(e.kind, e.kind)) for e in result.events if e.kind != "action"]


@pytest.mark.parametrize("scenario", [HEALTHY, BAD], ids=["healthy", "bad"])
def test_live_and_replay_reach_the_same_verdicts(
    history: tuple[str, float], scenario: Scenario
) -> None:
    url, t0 = history
    rule = next(r for r in load_rules([PACK]).rules if r.name == "api-5xx-judged")
    assert isinstance(rule, JudgeRule)
    dep = Deployment(scenario.service, "production", "v2", "v1")
    now = asyncio.run(live(url, rule, dep, t0))
    then = asyncio.run(replayed(url, rule, dep, t0))
    assert now == then
    fired = [at - t0 for at, verdict in now if verdict == "firing"]
    if scenario.healthy:
        assert fired == [] and now[-1][1] in {"ok", "inconclusive"}
    else:
        assert len(fired) == 1 and 60 <= fired[0] <= 180  # after the warmup, within 2 min


def test_the_benchmark_runs_at_tiny_size() -> None:
    args = decisions.parse(["--healthy", "12", "--bad", "6", "--chunk", "9"])
    results, _ = decisions.run(args)
    assert set(results) == {"threshold", "judge"}
    judge = results["judge"]
    assert len(judge) == 18 and sum(o.scenario.healthy for o in judge) == 12
    assert not any(o.rollback_at is not None for o in judge if o.scenario.healthy)
    assert sum(o.caught for o in judge) >= 3
    from bench.decisions_report import report

    text = report(results)
    lines = text.splitlines()
    assert sum(line.startswith("| threshold |") for line in lines) == 1
    assert "| 1000 | judge |" in text


def _two_versions(t0: float, bad_rate: float) -> str:
    """10 minutes of v1 (1 % errors) and v2 (``bad_rate``) serving side by side, 50/s each."""
    lines = ["# TYPE http_requests counter\n"]
    for version, rate in (("v1", 0.01), ("v2", bad_rate)):
        for status, share in (("2xx", 1 - rate), ("5xx", rate)):
            labels = f'service="canary",version="{version}",status="{status}"'
            lines += [
                f"http_requests_total{{{labels}}} {round(750 * share * i)} {t0 + 15 * i:.3f}\n"
                for i in range(41)
            ]
    return "".join(lines) + "# EOF\n"


@pytest.mark.parametrize(("rate", "fires"), [(0.08, True), (0.01, False)])
def test_against_the_previous_version_on_prometheus(
    tmp_path: Path, rate: float, fires: bool
) -> None:
    import subprocess
    import time

    from examples.stack import find_binary

    t0 = (time.time() - 6 * 3600) // 7200 * 7200
    path = tmp_path / "canary.om"
    path.write_text(_two_versions(t0, rate))
    data = tmp_path / "data"
    subprocess.run(
        [
            find_binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(path),
            str(data),
        ],
        check=True,
        capture_output=True,
    )
    file = rule_file(tmp_path, "canary.yml").group("canary", "15s")
    file.judge("canary-5xx", ERRORS_5XX, REQUESTS, against="previous_version", action="rollback")
    rules = file.write()
    dep = Deployment("canary", "production", "v2", "v1")
    with decisions.serve_prometheus(data, tmp_path) as url:

        async def run() -> Any:
            source = PrometheusSource(url, timeout=10, retries=1, concurrency=2)
            try:
                return await Replayer(source).run(load_rules([rules]), dep, t0, t0 + 600)
            finally:
                await source.close()

        result = asyncio.run(run())
    assert result.evaluations > 0
    if fires:
        assert result.rollback_rule == "canary-5xx"
        assert result.rollback_at is not None and result.rollback_at - t0 <= 180
        firing = result.first("canary-5xx", "firing")
        assert firing is not None and "(previous version beside it 0.99% of " in firing.message
        assert firing.value == pytest.approx(0.08, abs=0.002)
    else:
        assert result.rollback_at is None
