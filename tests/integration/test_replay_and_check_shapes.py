"""`watchdog replay` says each rule's final verdict, and `check --prometheus` checks label
values, against a real Prometheus holding series shaped as two real exporters write them.

The history (backfilled with ``promtool tsdb create-blocks-from openmetrics``, one sample
every 15 s, ending when the fixture starts so instant queries see it too):

- ``fastapi-app``: prometheus-fastapi-instrumentator's ``http_requests_total{handler,
  method, status}`` with grouped codes (``2xx``, ``5xx``), 10 requests/s, 1 % 5xx;
- ``starlette-app``: starlette-exporter's ``starlette_requests_total{method, path,
  status_code}`` with literal codes (``200``, ``500``);
- ``sparse``: instrumentator series for only the first 5 of the replayed 30 minutes;
- ``quiet``: one request a minute, never an error: far too little for the judge.
"""

from __future__ import annotations

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
from tests.rules import ERRORS_5XX, REQUESTS
from tests.rules import rules as rule_file
from watchdog.cli import main as cli

pytestmark = pytest.mark.integration

STEP = 15  # seconds between samples
HISTORY = 3 * 3600  # seconds of history, ending at the fixture's start
DEPLOY_AGO = 45 * 60  # the replayed deploy: 45 minutes before the history ends
WINDOW = 30 * 60
SPARSE_FOR = 5 * 60


@dataclass
class Shapes:
    prom_url: str
    deploy: float
    rules: Path  # a directory of rule files


def _series(name: str, labels: str, per_step: float, since: float, until: float) -> list[str]:
    out, value = [], 0.0
    t = since
    while t <= until:
        out.append(f"{name}{{{labels}}} {value:g} {t:.0f}")
        value += per_step
        t += STEP
    return out


def history(end: float) -> str:
    """Every series as OpenMetrics (each series' samples together, in time order)."""
    start, deploy = end - HISTORY, end - DEPLOY_AGO
    instr, star = "http_requests_total", "starlette_requests_total"
    groups = [
        _series(instr, 'service="fastapi-app",handler="/items",method="GET",status="2xx"', 148.5, start, end),
        _series(instr, 'service="fastapi-app",handler="/items",method="GET",status="5xx"', 1.5, start, end),
        _series(star, 'service="starlette-app",method="GET",path="/items",status_code="200"', 148.5, start, end),
        _series(star, 'service="starlette-app",method="GET",path="/items",status_code="500"', 1.5, start, end),
        _series(instr, 'service="sparse",handler="/",method="GET",status="2xx"', 150, deploy, deploy + SPARSE_FOR),
        _series(instr, 'service="sparse",handler="/",method="GET",status="5xx"', 0, deploy, deploy + SPARSE_FOR),
        _series(instr, 'service="quiet",handler="/",method="GET",status="2xx"', 0.25, start, end),
        _series(instr, 'service="quiet",handler="/",method="GET",status="5xx"', 0, start, end),
    ]  # fmt: skip
    body = [line for family in (instr, star) for g in groups if g[0].startswith(family + "{")
            for line in g]  # fmt: skip
    return "\n".join([*body, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shapes]:
    tmp = tmp_path_factory.mktemp("shapes")
    end = float(int(time.time()) - 5)
    (tmp / "history.om").write_text(history(end))
    promtool = [shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from"]
    done = subprocess.run(
        [*promtool, "openmetrics", str(tmp / "history.om"), str(tmp / "tsdb")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rules = tmp / "rules"
    rules.mkdir()
    ratio = f"sum(rate({ERRORS_5XX}[1m]))\n  / sum(rate({REQUESTS}[1m]))\n"
    threshold = rule_file(rules, "threshold.yml").group("threshold", "15s")
    threshold.prometheus("api-5xx-ratio", ratio, above="5%", for_="1m", action="rollback")
    judge = rule_file(rules, "judge.yml").group("judge", "15s")
    judge.judge(
        "api-5xx-judged", ERRORS_5XX, REQUESTS, against="none", floor="5%", action="rollback"
    )
    threshold.write()
    judge.write()
    with start_prometheus(tmp, [], data=tmp / "tsdb") as prom:
        yield Shapes(prom.url, end - DEPLOY_AGO, rules)


def replay(
    shapes: Shapes, service: str, rules: str, capsys: Any, *, json_out: bool = True
) -> tuple[int, Any]:
    args = ["replay", str(shapes.rules / rules), "--service", service, "--timeout", "20"]
    args += ["--from", repr(shapes.deploy), "--to", "+30m", "--prometheus-url", shapes.prom_url]
    args += ["--scrape-interval", "15s"] + (["--json"] if json_out else [])
    code = cli.main(args)
    out = capsys.readouterr().out
    return code, json.loads(out) if json_out else out


@pytest.fixture
def no_watchdog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("WATCHDOG_")]:
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_watchdog_env")
def test_a_healthy_range_judged_throughout_exits_0(shapes: Shapes, capsys: Any) -> None:
    code, out = replay(shapes, "fastapi-app", "threshold.yml", capsys)
    assert code == 0, out
    final = out["rules"]["api-5xx-ratio"]
    assert final["verdict"] == "ok" and final["judged"] is True
    assert final["evaluations_without_data"] == 0 and out["unjudged"] == []


@pytest.mark.usefixtures("no_watchdog_env")
def test_five_minutes_of_data_in_thirty_is_not_a_pass(shapes: Shapes, capsys: Any) -> None:
    code, out = replay(shapes, "sparse", "threshold.yml", capsys)
    assert code == 9, out
    final = out["rules"]["api-5xx-ratio"]
    assert final["verdict"] == "no_data" and final["judged"] is False
    # rate(...[1m]) sees the last samples for a minute more: 6 of 30 minutes had data
    assert 23.5 <= final["minutes_without_data"] <= 25.5 and final["minutes"] == 30.2
    assert out["unjudged"] == ["api-5xx-ratio"] and out["rollback_at"] is None
    code, text = replay(shapes, "sparse", "threshold.yml", capsys, json_out=False)
    assert code == 9
    lines = text.splitlines()
    [said] = [line for line in lines if line.startswith("rule api-5xx-ratio: ")]
    assert said.startswith("rule api-5xx-ratio: no data for 2") and said.endswith(" of 30 minutes")
    assert lines[-1] == "verdict: not a pass: could not judge most of the range: api-5xx-ratio"


@pytest.mark.usefixtures("no_watchdog_env")
def test_a_judge_that_never_had_enough_evidence_is_not_a_pass(shapes: Shapes, capsys: Any) -> None:
    code, out = replay(shapes, "quiet", "judge.yml", capsys)
    assert code == 9, out
    final = out["rules"]["api-5xx-judged"]
    # data throughout, but for the warm-up minute (nothing counted yet: no proportion)
    assert final["verdict"] == "inconclusive" and final["minutes_without_data"] <= 1.5
    assert final["seen"] is not None and final["needed"] is not None
    assert 20 <= final["seen"] <= 32 < final["needed"]  # ~1 request a minute for 30 minutes
    assert final["text"].startswith(f"inconclusive: saw {final['seen']:,.0f} requests, needs ~")


# --- check --prometheus: label values that exist, for both exporters ----------------------

CHECKED = """\
groups:
  - name: g
    rules:
      - name: instrumentator-ok
        source: prometheus
        query: sum(rate(http_requests_total{service="{{ service }}",status="5xx"}[1m]))
        threshold: "> 0"
      - name: instrumentator-codes
        source: prometheus
        query: sum(rate(http_requests_total{service="{{ service }}",status="500"}[1m]))
        threshold: "> 0"
      - name: starlette-grouped
        source: judge
        errors: starlette_requests_total{service="{{ service }}",status_code="5xx"}
        total: starlette_requests_total{service="{{ service }}"}
        against: none
        floor: 5%
      - name: starlette-wrong-label
        source: judge
        errors: starlette_requests_total{service="{{ service }}",status="5xx"}
        total: starlette_requests_total{service="{{ service }}"}
        against: none
        floor: 5%
      - name: no-4xx-yet
        source: prometheus
        query: sum(rate(http_requests_total{service="{{ service }}",status="4xx"}[1m]))
        threshold: "> 0"
      - name: either-form
        source: judge
        errors: starlette_requests_total{service="{{ service }}",status_code=~"5.."}
        total: starlette_requests_total{service="{{ service }}"}
        against: none
        floor: 5%
      - name: canary-without-versions
        source: judge
        errors: http_requests_total{service="{{ service }}",status="5xx"}
        total: http_requests_total{service="{{ service }}"}
        against: previous_version
"""


@pytest.mark.usefixtures("no_watchdog_env")
def test_check_lists_the_label_values_that_exist(
    shapes: Shapes, tmp_path: Path, capsys: Any
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(CHECKED)
    code = cli.main(["check", str(rules), "--prometheus", shapes.prom_url])
    out, err = capsys.readouterr()
    assert code == 1, err
    star = "starlette_requests_total"
    assert err.splitlines() == [
        f"{rules}:8: rule 'instrumentator-codes': status=\"500\" can never match "
        'http_requests_total: status has 2xx, 5xx, none like "500" (to match either form: '
        'status=~"5..")',
        f"{rules}:12: rule 'starlette-grouped': status_code=\"5xx\" can never match {star}: "
        'status_code has 200, 500, none like "5xx" (to match either form: status_code=~"5..")',
        f"{rules}:18: rule 'starlette-wrong-label': series {star} have no 'status' label, so "
        "the rule never matches",
        f"{rules}:24: note: rule 'no-4xx-yet': status=\"4xx\" matches no series of "
        "http_requests_total right now: status has 2xx, 5xx (fine for an error counter whose "
        "series appears with its first error)",
        f"{rules}:34: rule 'canary-without-versions': series http_requests_total have no "
        "'version' label, so the rule never matches",
    ]
    assert out.splitlines()[-1] == (
        f"FAILED: {shapes.prom_url}: 7 rules reading Prometheus checked: 4 rules can never "
        "fire, 1 note"
    )
    # With the service named, the values are that service's.
    code = cli.main(["check", str(rules), "--prometheus", shapes.prom_url, "--service", "quiet"])
    err = capsys.readouterr().err
    assert 'status="500" can never match http_requests_total{service="quiet"}' in err
