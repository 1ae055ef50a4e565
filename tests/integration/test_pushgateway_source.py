"""The ``pushgateway`` kind against a real Prometheus Pushgateway (Debian's
``prometheus-pushgateway``), loaded from a rule file and built by the app's wiring:
pushes from before the window are the previous version's, each series is judged on its
own, a Pushgateway that stops is blind, and the rule file's mistakes name their line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers.common import free_port, require_binary, running
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, SampleKind, Verdict
from watchdog.rulefile.load import check_report, load_rules
from watchdog.settings import Settings
from watchdog.sources.base import SampleContext
from watchdog.sources.blindness import source_key
from watchdog.wiring import sources

pytestmark = pytest.mark.integration

RULES = """\
groups:
  - name: batch
    rules:
      - name: import-rejects
        source: pushgateway
        url: {url}
        job: '{{{{ service }}}}-import'
        metric: import_rows_rejected
        match: {{table: orders}}
        action: rollback
      - name: import-anything
        source: pushgateway
        url: {url}
        job: '{{{{ service }}}}-import'
        grouping: {{instance: w2}}
        metric: import_rows_rejected
"""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A Pushgateway on a free loopback port, in memory only."""
    binary = require_binary("prometheus-pushgateway")
    port = free_port()
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    with running(argv, tmp_path / "pushgateway.log", port):
        yield f"http://127.0.0.1:{port}"


def push(url: str, job: str, instance: str, body: str) -> None:
    """What a batch job does when it ends (text exposition format)."""
    httpx.put(f"{url}/metrics/job/{job}/instance/{instance}", content=body).raise_for_status()


def ctx(since: float) -> SampleContext:
    return SampleContext("w1", {"service": "shop"}, at=time.time(), since=since)


async def test_only_pushes_since_the_window_are_judged_each_series_on_its_own(
    gateway: str, tmp_path: Path
) -> None:
    (tmp_path / "batch.yml").write_text(RULES.format(url=gateway))
    rules = load_rules([tmp_path / "batch.yml"])
    rejects, anything = rules.by_name["import-rejects"], rules.by_name["import-anything"]
    built = sources(Settings(_env_file=None, rules=[tmp_path]), store=None)
    source = built.get("pushgateway")
    try:
        # The previous version's run pushed before the deploy: it is not evidence.
        push(gateway, "shop-import", "w1", 'import_rows_rejected{table="orders"} 7\n')
        opened = time.time()
        before = await source.sample(rejects, ctx(opened))
        assert before.kind is SampleKind.NO_DATA
        assert before.error == "no push from job 'shop-import' since the window opened"
        assert (await source.sample(rejects, ctx(0.0))).series[0].value == 7.0  # it is there

        # The new version's runs: one rejects order rows, one is fine; another job too.
        push(
            gateway,
            "shop-import",
            "w1",
            'import_rows_rejected{table="orders"} 3\nimport_rows_rejected{table="users"} 9\n',
        )
        push(gateway, "shop-import", "w2", 'import_rows_rejected{table="orders"} 0\n')
        push(gateway, "billing-import", "w1", 'import_rows_rejected{table="orders"} 5\n')  # fmt: skip
        now = await source.sample(rejects, ctx(opened))
        assert sorted((s.labels["instance"], s.value) for s in now.series) == [
            ("w1", 3.0), ("w2", 0.0)
        ]  # fmt: skip
        judged = evaluate(rejects, RuleState(), now, time.time(), None)
        assert judged.verdict is Verdict.FIRING  # `> 0` held by w1's orders, `for` 0
        only_w2 = await source.sample(anything, ctx(opened))
        assert [s.value for s in only_w2.series] == [0.0]
        assert evaluate(anything, RuleState(), only_w2, time.time(), None).verdict is Verdict.OK
    finally:
        await built.close()


async def test_a_histogram_is_the_rules_error_and_a_stopped_gateway_is_blindness(
    tmp_path: Path,
) -> None:
    binary = require_binary("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "batch.yml").write_text(RULES.format(url=url))
    rules = load_rules([tmp_path / "batch.yml"])
    rule = rules.by_name["import-rejects"].model_copy(update={"match": {}})
    built = sources(Settings(_env_file=None, rules=[tmp_path]), store=None)
    source = built.get("pushgateway")
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    try:
        with running(argv, tmp_path / "pushgateway.log", port):
            push(url, "shop-import", "w1",
                 "# TYPE import_rows_rejected histogram\n"
                 'import_rows_rejected_bucket{le="1"} 1\nimport_rows_rejected_bucket{le="+Inf"} 2\n'
                 "import_rows_rejected_sum 3\nimport_rows_rejected_count 2\n")  # fmt: skip
            histogram = await source.sample(rule, ctx(0.0))
            assert histogram.kind is SampleKind.ERROR and not histogram.transient
            assert histogram.error == "import_rows_rejected is a HISTOGRAM: push a gauge"
        down = await source.sample(rule, ctx(0.0))
    finally:
        await built.close()
    assert down.kind is SampleKind.ERROR and down.transient
    assert f"cannot connect to Pushgateway 127.0.0.1:{port}" in (down.error or "")
    assert down.unreachable == f"Pushgateway 127.0.0.1:{port}" == source_key(rule)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "        baseline: {offset: 1h}\n",
            "r.yml:4: rules: pushgateway keeps only the last push",
        ),
        ("        match: {'bad-label': x}\n", "r.yml:10: match: invalid label name 'bad-label'"),
        ("        job: '{{ nope }}'\n", "unknown template variable 'nope'"),
    ],
)
def test_rule_file_mistakes_name_their_line(tmp_path: Path, extra: str, expected: str) -> None:
    path = tmp_path / "r.yml"
    path.write_text(
        "groups:\n  - name: g\n    rules:\n      - name: a\n        source: pushgateway\n"
        "        url: http://pushgateway:9091\n        metric: m\n        threshold: '> 1'\n"
        + ("" if "job:" in extra else "        job: nightly\n")
        + extra
    )
    problems = check_report([path])[1]
    assert len(problems) == 1 and expected in problems[0], problems
