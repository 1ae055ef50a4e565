"""Replay against a real Prometheus holding a history whose fault schedule we wrote.

The history is written as OpenMetrics and loaded with ``promtool tsdb
create-blocks-from openmetrics`` (no waiting for scrapes): a service at 10 requests a
second, healthy for a minute, then 40 % errors for 30 s from a known instant, then
healed. Prometheus itself says (at 100 ms resolution) when the 5xx ratio first crossed
5 %; the replay must report firing at that moment within one rule interval, nothing on
the healthy stretch, and the `for` delay on top for a rule that has one.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.stack import start_prometheus
from tests.rules import rules as rule_file
from watchdog.cli import main as cli
from watchdog.evaluation.replay import Replayer, ReplayResult
from watchdog.foundation.model import Deployment
from watchdog.rulefile.load import load_rules
from watchdog.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.integration

RATIO = (
    'sum(rate(http_requests_total{{service="{s}",status=~"5.."}}[5s]))'
    ' / sum(rate(http_requests_total{{service="{s}"}}[5s]))'
)
INTERVAL = 1.0


@dataclass
class Known:
    prom_url: str
    rules: Path
    start: float  # the history's first usable instant
    fault_at: float
    healed_at: float
    end: float
    visible_at: float  # when Prometheus first shows the ratio above 5 %


def first_breach(prom_url: str, start: float, end: float) -> float:
    source = PrometheusSource(prom_url, timeout=10, retries=1, concurrency=1)

    async def scan() -> float:
        try:
            found = await source.query_range(RATIO.format(s="demo"), start, end, 0.1)
        finally:
            await source.close()
        return min(t for _, pts in found for t, v in pts if v > 0.05)

    return asyncio.run(scan())


HEALTHY, FAULTY, HEALED = 60, 30, 30  # seconds of each stretch, one sample a second


def history(t0: int) -> str:
    """The counters as OpenMetrics: 10 requests a second, 4 of them 5xx while faulty."""
    ok = errors = 0
    lines: dict[str, list[str]] = {"200": [], "500": []}
    for k in range(HEALTHY + FAULTY + HEALED + 1):
        for status, value in (("200", ok), ("500", errors)):
            sample = f'http_requests_total{{service="demo",status="{status}"}} {value} {t0 + k}'
            lines[status].append(sample)
        faulty = HEALTHY <= k < HEALTHY + FAULTY
        ok, errors = ok + (6 if faulty else 10), errors + (4 if faulty else 0)
    return "\n".join([*lines["200"], *lines["500"], "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    tmp = tmp_path_factory.mktemp("replay")
    ratio = RATIO.format(s="{{ service }}")
    file = rule_file(tmp).group("replay", "1s")
    file.prometheus("ratio-now", ratio, above="5%", action="notify")
    file.prometheus("ratio-for-3s", ratio, above="5%", for_="3s", action="rollback")
    rules = file.http("health", "http://127.0.0.1:1/health").write()
    t0 = int(time.time()) - 3600  # an hour ago: well inside retention, outside the head
    (tmp / "history.om").write_text(history(t0))
    promtool = [shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from"]
    subprocess.run(
        [*promtool, "openmetrics", str(tmp / "history.om"), str(tmp / "tsdb")],
        check=True,
        capture_output=True,
    )
    with start_prometheus(tmp, [], data=tmp / "tsdb") as prom:
        start, fault_at = t0 + 6.0, t0 + float(HEALTHY)  # rate(...[5s]) needs 5 s behind it
        healed_at, end = fault_at + FAULTY, t0 + float(HEALTHY + FAULTY + HEALED)
        visible = first_breach(prom.url, start, end)
        yield Known(prom.url, rules, start, fault_at, healed_at, end, visible)


def replay(known: Known, start: float, end: float) -> ReplayResult:
    source = PrometheusSource(known.prom_url, timeout=10, retries=1, concurrency=2)
    rules = load_rules([known.rules])

    async def go() -> ReplayResult:
        try:
            return await Replayer(source).run(rules, Deployment("demo", "e2e", "v2"), start, end)
        finally:
            await source.close()

    return asyncio.run(go())


def test_fires_within_one_interval_of_the_fault_and_not_before(known: Known) -> None:
    # the fault became visible in Prometheus shortly after we injected it
    assert known.fault_at <= known.visible_at <= known.fault_at + 3
    result = replay(known, known.start, known.end)
    fired = result.first("ratio-now", "firing")
    assert fired is not None, result.events
    # Prometheus evaluates at millisecond resolution: the same instant may differ by < 1 ms
    assert known.visible_at - 0.001 <= fired.at <= known.visible_at + INTERVAL
    before = [e for e in result.events if e.at < known.fault_at]
    assert before == [], before
    # the rollback rule went pending at the same evaluation and fired 3s later
    pending = result.first("ratio-for-3s", "pending")
    assert pending is not None and pending.at == fired.at
    assert result.rollback_rule == "ratio-for-3s" and result.rollback_at == fired.at + 3
    assert result.skipped == {"health": "http rules have no history to replay"}


def test_healthy_stretch_replays_quiet(known: Known) -> None:
    result = replay(known, known.start, known.fault_at)
    assert result.rollback_at is None
    assert [e for e in result.events if e.kind in ("pending", "firing")] == []
    assert result.evaluations == 2 * (int(known.fault_at - known.start) + 1)


def test_cli_json_tells_the_same_story(known: Known, capsys: Any) -> None:
    args = ["replay", str(known.rules), "--service", "demo", "--json"]
    args += ["--from", repr(known.start), "--to", repr(known.end)]
    args += ["--prometheus-url", known.prom_url]
    assert cli.main(args) == 3  # would have rolled back: the gate's code for rolled_back
    out = json.loads(capsys.readouterr().out)
    assert out["rollback_rule"] == "ratio-for-3s"
    kinds = [(e["rule"], e["kind"]) for e in out["events"]]
    assert ("ratio-now", "firing") in kinds and kinds[-1] == ("ratio-for-3s", "action")
    # a healthy stretch in text form says so
    quiet = ["replay", str(known.rules), "--service", "demo", "--prometheus-url", known.prom_url]
    quiet += ["--from", repr(known.start), "--to", repr(known.fault_at)]
    assert cli.main(quiet) == 0
    assert "verdict: no rollback over this range" in capsys.readouterr().out


@pytest.fixture
def no_watchdog_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in [n for n in os.environ if n.startswith("WATCHDOG_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_cli_reads_prometheus_from_the_watchdog_config_file(
    known: Known, capsys: Any, tmp_path: Path, no_watchdog_env: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "watchdog.yml"
    config.write_text(f"prometheus_url: {known.prom_url}\n")
    no_watchdog_env.setenv("WATCHDOG_CONFIG", str(config))
    args = ["replay", str(known.rules), "--service", "demo"]
    args += ["--from", repr(known.start), "--to", repr(known.fault_at)]
    assert cli.main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "verdict: no rollback over this range" in out
    counted = [line for line in out.splitlines() if line.endswith(" evaluations without data")]
    assert len(counted) == 1 and counted[0].startswith("0 of "), out


@pytest.mark.parametrize("case", ["unknown service", "empty range", "unreachable"])
def test_a_replay_that_saw_no_data_is_not_a_pass(
    known: Known, capsys: Any, case: str, no_watchdog_env: pytest.MonkeyPatch
) -> None:
    from examples.stack import free_port

    service, url = "demo", known.prom_url
    start, end = known.start, known.fault_at
    if case == "unknown service":
        service = "no-such-service"
    elif case == "empty range":  # an hour before Prometheus held anything
        start, end = known.start - 3600, known.start - 3590
    else:
        url = f"http://127.0.0.1:{free_port()}"
    args = ["replay", str(known.rules), "--service", service, "--json", "--timeout", "2"]
    args += ["--from", repr(start), "--to", repr(end), "--prometheus-url", url]
    assert cli.main(args) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["rollback_at"] is None
    assert sorted(out["saw_no_data"]) == ["ratio-for-3s", "ratio-now"]
    assert out["evaluations_without_data"] == out["evaluations"] > 0
    reason = out["saw_no_data"]["ratio-now"]
    assert ("cannot connect" in reason) if case == "unreachable" else reason == "empty result"
