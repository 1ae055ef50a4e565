"""The ``alertmanager`` source and rule kind: which recorded alerts count for a window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.foundation.errors import ConfigError
from watchdog.foundation.model import Deployment, SampleKind, Window, WindowPhase
from watchdog.rulefile.load import load_rules
from watchdog.rulefile.schema import AlertmanagerRule
from watchdog.sources.alertmanager import AlertmanagerSource
from watchdog.sources.base import SampleContext
from watchdog.store.sqlite import SqliteStore

START = 10_000.0


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    s = SqliteStore(":memory:")
    await s.open()
    deployment = Deployment(service="api", environment="prod", version="v2")
    await s.insert_window(
        Window("w1", deployment, WindowPhase.WATCHING, START, START + 1800, START)
    )
    yield s
    await s.close()


def rule(**kw: Any) -> AlertmanagerRule:
    return AlertmanagerRule.model_validate({"name": "r", "source": "alertmanager", **kw})


def firing(fp: str, starts_at: float = START + 10, **labels: str) -> Alert:
    base = {"alertname": "High5xx", "service": "api", "environment": "prod"}
    return Alert(fp, starts_at, AlertStatus.FIRING, {**base, **labels})


async def value(
    store: SqliteStore, r: AlertmanagerRule, at: float = START + 60, **kw: Any
) -> float:
    sample = await AlertmanagerSource(store).sample(r, SampleContext("w1", {}, at, **kw))
    assert sample.kind is SampleKind.VALUES, sample
    return sample.series[0].value


async def test_counts_matching_firing_alerts_of_the_window(store: SqliteStore) -> None:
    await store.record_alerts(
        [
            firing("a", instance="1"),
            firing("b", instance="2"),
            firing("c", service="billing"),  # another service
            firing("d", environment="staging"),  # another environment
            firing("e", alertname="DiskFull"),  # another alert
        ],
        at=START + 20,
    )
    assert await value(store, rule(alertname="High5xx")) == 2
    assert await value(store, rule()) == 3  # no matchers: every alert of the service
    assert await value(store, rule(alertname="High5xx", matchers={"instance": "2"})) == 1
    assert await value(store, rule(match_re={"alertname": "High.*|Disk.*"})) == 3
    assert await value(store, rule(match_re={"alertname": "High"})) == 0  # anchored
    assert await value(store, rule(alertname="High5xx", environment_label=None)) == 3


async def test_service_label_is_configurable(store: SqliteStore) -> None:
    await store.record_alerts(
        [Alert("j", START + 10, AlertStatus.FIRING, {"alertname": "X", "job": "api"})],
        at=START + 20,
    )
    assert await value(store, rule(service_label="job", environment_label=None)) == 1
    assert await value(store, rule()) == 0


async def test_alerts_from_before_the_deploy_count_only_when_the_rule_says(
    store: SqliteStore,
) -> None:
    await store.record_alerts([firing("old", starts_at=START - 600)], at=START + 20)
    assert await value(store, rule()) == 0
    assert await value(store, rule(include_preexisting=True)) == 1


async def test_resolved_alerts_stop_counting(store: SqliteStore) -> None:
    await store.record_alerts([firing("a"), firing("b", instance="2")], at=START + 20)
    gone = Alert("a", START + 10, AlertStatus.RESOLVED, firing("a").labels, ends_at=START + 40)
    await store.record_alerts([gone], at=START + 45)
    assert await value(store, rule()) == 1
    # Looking back (replay): at START+30 both were firing, at START+50 only b.
    assert await value(store, rule(), at=START + 30, live=False) == 2
    assert await value(store, rule(), at=START + 50, live=False) == 1


async def test_one_fingerprint_counts_once_whatever_its_starts(store: SqliteStore) -> None:
    # Two HA Prometheus replicas: same labels (fingerprint), starts a second apart.
    await store.record_alerts([firing("a"), firing("a", starts_at=START + 11)], at=START + 20)
    assert await value(store, rule()) == 1


async def test_no_alert_is_a_healthy_zero_not_no_data(store: SqliteStore) -> None:
    assert await value(store, rule()) == 0


async def test_unknown_window_is_a_permanent_error(store: SqliteStore) -> None:
    sample = await AlertmanagerSource(store).sample(rule(), SampleContext("nope", {}, START))
    assert sample.kind is SampleKind.ERROR and not sample.transient


def test_rule_defaults_and_equal_matchers() -> None:
    r = rule(alertname="X", matchers={"team": "core"})
    assert r.equal == {"team": "core", "alertname": "X"}
    assert r.threshold.describe(None) == "> 0"
    assert (r.service_label, r.environment_label, r.include_preexisting) == (
        "service",
        "environment",
        False,
    )


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("        match_re: {alertname: '(unclosed'}\n", "not a regular expression RE2 accepts"),
        ("        baseline: {offset: 1h}\n", "include_preexisting"),
        ("        service_label: 'not a label'\n", "service_label"),
        ("        matchers: [a, b]\n", "matchers"),
    ],
)
def test_bad_alertmanager_rules_name_file_and_line(
    tmp_path: Path, snippet: str, message: str
) -> None:
    path = tmp_path / "alerts.yml"
    path.write_text(
        "groups:\n  - name: g\n    rules:\n      - name: a\n        source: alertmanager\n"
        + snippet
    )
    with pytest.raises(ConfigError) as info:
        load_rules([path])
    assert any(p.startswith(f"{path}:") and message in p for p in info.value.problems), (
        info.value.problems
    )


def test_shipped_alert_rules_load() -> None:
    rules = load_rules([Path(__file__).resolve().parents[2] / "rules" / "alerts.yml"])
    kinds = {r.source for r in rules.rules}
    assert kinds == {"alertmanager"} and len(rules.rules) == 4


async def test_ten_thousand_newer_noise_alerts_change_nothing_for_the_window(
    store: SqliteStore,
) -> None:
    """Issue 25 M1: the window's alert is found however many newer alerts of other
    services are stored (the source used to read only the 10,000 newest of all)."""
    await store.record_alerts([firing("mine")], at=START + 20)
    noise = [
        firing(f"n{i}", START + 30 + i * 0.01, service=f"noise-{i % 100}", pad="x" * 1024)
        for i in range(10_000)
    ]
    await store.record_alerts(noise, at=START + 40)
    assert await value(store, rule(alertname="High5xx")) == 1
