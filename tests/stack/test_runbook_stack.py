"""The runbook on a real stack (see stack.py, procs.py, faults.py, scenarios.py): every trigger
of the DESIGN table, injected as a real fault, gets exactly its action within `for` + 2
intervals; a healthy deploy with steady traffic stays silent for more than three real
minutes; a deploy 30 s after a rollback is judged on its own data."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack.scenarios import HEALTHY_WINDOW, INTERVAL
from tests.stack.stack import SCRAPE

# Fault → action is bounded by `for` + 2 intervals, plus what the fault itself takes to
# be seen: two scrapes (a counter series the fault creates, such as status="5xx", has a
# rate() only from its second sample) and a slow request's own duration (`lag`). FOR_SLACK: a rule
# pending for 1.75 s of a 2 s `for` waits one more interval, because due times run 250 ms
# early and `for` has no such slack (issue 12's rough edges, fixed apart): drop it then.
FOR_SLACK = INTERVAL


def bound(got: dict[str, Any]) -> float:
    return float(got["for_"] + 2 * INTERVAL + 2 * SCRAPE + got["lag"] + FOR_SLACK)


pytestmark = pytest.mark.stack

AUTOMATIC = [
    ("api-health", "rollback"),
    ("db-connection-failures", "rollback"),
    ("api-5xx-judged", "rollback"),
    ("celery-failure-ratio", "rollback"),
    ("api-p95-judged", "rollback"),
    ("db-avg-query-latency", "rollback"),
    ("rls-violations-logged", "approve"),
    ("fk-violations-logged", "approve"),
    ("fk-orphan-rows", "approve"),
    ("required-column-nulls", "approve"),
    # rules/alternatives/api-scrape.yml: the same runbook triggers without Prometheus
    ("api-5xx-ratio-scrape", "rollback"),
    ("api-p95-scrape", "rollback"),
]
MANUAL = ["oom-kills-host", "webhook-signature-failures", "synthetic-login", "synthetic-core-api"]


@pytest.mark.parametrize(("rule", "action"), AUTOMATIC)
def test_automatic_trigger_acts_once_in_time(
    stack_results: dict[str, Any], rule: str, action: str
) -> None:
    got = stack_results[rule]
    assert got["seconds"] is not None, got
    assert got["fired"] == [rule], got  # and no other rule of the pack
    if action == "rollback":
        assert (got["rollbacks"], got["phase"]) == (1, "rolled_back"), got
    else:
        assert (got["rollbacks"], got["approvals"]) == (0, 1), got
        assert got["phase"] == "awaiting_approval", got
    assert got["seconds"] <= bound(got), got


def test_slow_statement_is_named_by_its_normalized_text(stack_results: dict[str, Any]) -> None:
    message = stack_results["db-avg-query-latency"]["message"]
    assert 'statement="SELECT pg_sleep($1)"' in message, message  # no parameter values


@pytest.mark.parametrize("rule", MANUAL)
def test_manual_trigger_tells_people_once(stack_results: dict[str, Any], rule: str) -> None:
    got = stack_results[rule]
    assert got["seconds"] is not None, got
    assert got["named"] == 1, got
    assert got["rollbacks"] == 0 and got["phase"] == "watching", got
    assert got["seconds"] <= bound(got), got


def test_manual_triggers_fire_only_themselves(stack_results: dict[str, Any]) -> None:
    assert stack_results[MANUAL[0]]["fired"] == sorted(MANUAL)


def test_healthy_deploy_stays_silent_for_three_minutes(stack_results: dict[str, Any]) -> None:
    got = stack_results["healthy"]
    assert got["length"] >= HEALTHY_WINDOW >= 180
    assert got["phase"] == "passed", got
    assert (got["rollbacks"], got["severe"], got["blind"], got["fired"]) == (0, [], 0, []), got
    # Absent is zero: no 5xx, invalid-webhook, failed-task or OOM series exist for this
    # service, yet every rule of the pack read a number, none "no data".
    assert got["no_value"] == [], got


def test_redeploy_after_a_rollback_is_judged_on_its_own_data(
    stack_results: dict[str, Any],
) -> None:
    got = stack_results["redeploy"]
    # A ratio over the last minute would read the rolled-back version's errors …
    assert got["unclamped"] and got["unclamped"][0] > 0.05, got
    # … but the judge counts from the window's opening: it passes.
    assert (got["phase"], got["rollbacks"], got["fired"]) == ("passed", 0, []), got
