"""The tests' rule-file builder (tests/rules.py) writes files the real loader reads as
meant: groups, intervals, ``for``, ``above``, scopes. Tests that lean on it trust this."""

from __future__ import annotations

from pathlib import Path

from tests.rules import ERRORS_5XX, REQUESTS, rules
from watchdog.foundation.model import Deployment
from watchdog.rulefile.load import load_rules
from watchdog.rulefile.schema import PostgresRule, PrometheusRule


def test_the_loader_reads_what_the_builder_wrote(tmp_path: Path) -> None:
    query = 'errors{service="{{ service }}"}'
    file = rules(tmp_path).prometheus("errors", query, above=0.05, for_="30s", action="rollback")
    file.group("db", "1m", services=["api"]).postgres("slow", "app", "select 1", threshold="< 2")
    file.group("judged", None).judge("ratio", ERRORS_5XX, REQUESTS, factor=1.5)
    loaded = load_rules([file.write()])
    errors, slow, ratio = loaded.rules
    assert isinstance(errors, PrometheusRule) and errors.query == query
    assert (errors.group, errors.interval, errors.for_) == ("api", 10.0, 30.0)
    assert errors.action.value == "rollback" and errors.threshold.text == "> 0.05"
    assert errors.origin == f"{file.path}:5"
    assert isinstance(slow, PostgresRule) and slow.interval == 60.0
    assert slow.threshold.text == "< 2" and slow.target == "app"
    assert ratio.source == "judge" and ratio.group == "judged"
    worker = Deployment("worker", "prod", "v2")
    assert [r.name for r in loaded.for_deployment(worker)] == ["errors", "ratio"]


def test_writing_again_after_a_change_rewrites_the_file(tmp_path: Path) -> None:
    file = rules(tmp_path, "r.yml").prometheus("a", "up", above=1)
    first = file.write()
    file.prometheus("b", "up", above=2, shadow=True)
    assert file.write() == first == tmp_path / "r.yml"
    loaded = load_rules([first])
    assert [(r.name, r.shadow) for r in loaded.rules] == [("a", False), ("b", True)]
