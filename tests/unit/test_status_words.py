"""The status page's words and numbers: units, the verdict sentence of each phase from
the journal's structured data (and without it), the manual rollback commands, the
judge's difference band."""

from __future__ import annotations

import math
from typing import Any

import pytest

from watchdog.actions.spec import Plan
from watchdog.foundation.model import Deployment, Event, EventKind, Verdict, Window, WindowPhase
from watchdog.judge.evidence import difference_band, wilson
from watchdog.lifecycle.control import RuleView
from watchdog.rulefile.units import infer_unit, seconds_text, value_text
from watchdog.store.base import RulePoint
from watchdog.web.status_manual import plan_commands
from watchdog.web.status_next import todos
from watchdog.web.status_story import story_of
from watchdog.web.status_verdict import Facts, sentence

T0 = 1_800_000_000.0  # 08:00:00 UTC


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.2924, "ratio", "29.2 %"),
        (0.05, "ratio", "5 %"),
        (12.5, "percent", "12.5 %"),
        (0.45, "seconds", "450 ms"),
        (44.98, "seconds", "45 s"),
        (135, "seconds", "2 m 15 s"),
        (1500, "milliseconds", "1.5 s"),
        (2048, "bytes", "2 KiB"),
        (1234.5, "count", "1234"),
        (None, "ratio", "-"),
        (math.nan, "seconds", "-"),
    ],
)
def test_values_print_in_their_unit(value: float | None, unit: str, text: str) -> None:
    assert value_text(value, unit) == text


def test_units_are_inferred_only_when_the_hints_agree() -> None:
    assert infer_unit("http-5xx-ratio", "sum(x)", 0.05, given=None) == "ratio"
    assert infer_unit("errors", "x", 50, given=None) == "count"  # not a fraction: no %
    assert infer_unit("p99", "http_request_duration_seconds_bucket", 0.8, given=None) == "seconds"
    assert infer_unit("queue", "depth", 100, given=None) == "count"
    assert infer_unit("x", None, None, source="judge", given=None) == "ratio"
    assert infer_unit("http-5xx-ratio", None, 0.05, given="percent") == "percent"
    assert seconds_text(3 * 3600 + 60) == "3 h 1 m"


def window(phase: WindowPhase, **kw: Any) -> Window:
    deployment = Deployment("api", "production", "v3", "v2", plan="kubectl")
    values = {"started_at": T0, "ends_at": T0 + 600, "updated_at": T0 + 300, **kw}
    return Window("w1", deployment, phase, **values)


def view(**kw: Any) -> RuleView:
    values: dict[str, Any] = {
        "name": "http-5xx-ratio", "group": "api", "source": "prometheus",
        "action": "rollback", "severity": "critical", "threshold": "> 0.05",
        "for_seconds": 60.0, "interval_seconds": 15.0, "verdict": Verdict.OK,
        "last_value": 0.002, "worst_value": 0.3, "pending_since": None,
        "last_eval_at": T0 + 290, "baseline": None, "reason": None,
        "threshold_value": 0.05, "unit": "ratio",
    }  # fmt: skip
    return RuleView(**{**values, **kw})


def ev(at: float, kind: EventKind, rule: str | None = None, **data: Any) -> Event:
    return Event("w1", T0 + at, kind, "(messages are never read)", rule, data)


FIRED = ev(
    146, EventKind.RULE_FIRING, "http-5xx-ratio", value=0.2924, threshold="> 0.05", **{"for": 60}
)
ROLLED = [
    FIRED,
    ev(146, EventKind.ROLLBACK_STARTED, "http-5xx-ratio", trigger="http-5xx-ratio"),
    ev(160, EventKind.ROLLBACK_SUCCEEDED),
]


def say(w: Window, events: list[Event], rules: list[RuleView] | None = None) -> tuple[str, str]:
    views = {r.name: r for r in rules or [view()]}
    points = {"http-5xx-ratio": [RulePoint(T0 + i * 15, 0.3, Verdict.FIRING) for i in range(10)]}
    return sentence(Facts(story_of(w, events), views, points, T0 + 400))


def test_rolled_back_and_recovered_reads_as_one_sentence() -> None:
    recovered = ev(220, EventKind.RECOVERED, took=45.0)
    tone, words = say(window(WindowPhase.ROLLED_BACK), [*ROLLED, recovered])
    assert tone == "good"
    assert words == (
        "Rolled back api v3 → v2 at 08:02:26: http-5xx-ratio 29.2 % > 5 % for 1 m. "
        "v2 recovered 45 s later."
    )


def test_a_manual_rollback_names_who() -> None:
    events = [ev(100, EventKind.ROLLBACK_STARTED, trigger="manual", actor="alice")]
    _, words = say(window(WindowPhase.ROLLED_BACK), events)
    assert words.startswith("Rolled back api v3 → v2 at 08:01:40: by hand, by alice.")


def test_a_failed_rollback_says_act_now_and_gives_the_plans_commands() -> None:
    failed = window(WindowPhase.ROLLBACK_FAILED, reason="kubectl exited 1")
    events = [
        *ROLLED[:2],
        ev(150, EventKind.STEP_FAILED, step="undo"),
        ev(150, EventKind.ROLLBACK_FAILED),
    ]
    tone, words = say(failed, events)
    assert tone == "bad" and "FAILED at 08:02:30 (step undo failed: kubectl exited 1)" in words
    assert "Act now" in words
    plan = Plan.model_validate(
        {
            "steps": [
                {
                    "name": "undo",
                    "kind": "command",
                    "argv": ["kubectl", "rollout", "undo", "deployment/{{ service }}"],
                }
            ]
        }
    )
    facts = Facts(
        story_of(failed, events), {"http-5xx-ratio": view(runbook_url="https://rb/x")}, {}, T0
    )
    items = todos(facts, lambda d: ("kubectl", plan))
    codes = [t.code for t in items]
    assert "kubectl rollout undo deployment/api" in codes
    assert "watchdog deploy status w1" in codes
    assert any(t.href == "https://rb/x" for t in items)


def test_an_ineffective_rollback_says_what_the_data_shows() -> None:
    points = [RulePoint(T0 + 140, 0.30, Verdict.FIRING), RulePoint(T0 + 200, 0.12, Verdict.FIRING)]
    events = [*ROLLED, ev(230, EventKind.ROLLBACK_INEFFECTIVE, breaching=["http-5xx-ratio"])]
    w = window(WindowPhase.ROLLBACK_INEFFECTIVE, confirm_for=60.0)
    facts = Facts(
        story_of(w, events),
        {"http-5xx-ratio": view(last_value=0.12)},
        {"http-5xx-ratio": points},
        T0,
    )
    tone, words = sentence(facts)
    assert tone == "bad" and "still breaches on v2 after 1 m: 12 % > 5 %" in words
    assert "fell from 30 % to 12 %" in words and "not the cause" not in words


@pytest.mark.parametrize(
    ("phase", "tone", "start"),
    [
        (WindowPhase.PASSED, "good", "Passed: api v3 was watched for 10 m"),
        (WindowPhase.INCONCLUSIVE, "amber", "Inconclusive: the window on api v3 ended"),
        (WindowPhase.EXPIRED_WHILE_HELD, "bad", "Expired while held: someone held api v3"),
        (WindowPhase.WOULD_HAVE_ROLLED_BACK, "amber", "Would have rolled back api v3 → v2"),
        (WindowPhase.ABORTED, "neutral", "Closed by a person at 08:05:00"),
        (WindowPhase.SUPERSEDED, "neutral", "Superseded at 08:05:00"),
        (WindowPhase.ROLLBACK_FAILED, "bad", "Rollback of api v3 → v2 FAILED"),
        (WindowPhase.ROLLBACK_INEFFECTIVE, "bad", "Rolled back api v3 → v2 at ?"),
        (WindowPhase.ROLLED_BACK, "good", "Rolled back api v3 → v2"),
        (WindowPhase.WATCHING, "good", "Watching: api v3, every rule ok"),
    ],
)
def test_every_phase_has_a_sentence_even_with_an_empty_journal(
    phase: WindowPhase, tone: str, start: str
) -> None:
    got_tone, words = say(window(phase), [], rules=[])
    assert got_tone == tone and words.startswith(start), words


def test_garbage_event_data_does_not_break_the_sentence() -> None:
    junk = ev(146, EventKind.RULE_FIRING, "http-5xx-ratio", value="lots", threshold=None)
    events = [
        junk,
        ev(200, EventKind.RECOVERED, took=float("nan")),
        ev(201, EventKind.HELD, actor=[1]),
    ]
    _, words = say(window(WindowPhase.ROLLED_BACK), events)
    assert "http-5xx-ratio - > 5 %" in words and "recovered after the rollback" in words


def test_plans_become_commands_and_unknown_plans_none() -> None:
    deployment = Deployment("api", "production", "v3", "v2")
    plan = Plan.model_validate(
        {"steps": [
            {"name": "k", "kind": "kubernetes", "deployment": "{{ service }}", "namespace": "prod"},
            {"name": "h", "kind": "http", "url": "https://deploy.example.com/rollback/{{ service }}"},
        ]}
    )  # fmt: skip
    name, commands = plan_commands(deployment, lambda d: ("p", plan))
    assert name == "p" and commands == [
        "kubectl -n prod rollout undo deployment/api",
        "curl -X POST https://deploy.example.com/rollback/api",
    ]
    assert plan_commands(deployment, lambda d: ("gone", None)) == ("gone", [])
    assert plan_commands(deployment, None) == ("", [])


def test_the_band_is_the_difference_with_its_interval() -> None:
    low, high = wilson(10, 1000)
    assert low < 0.01 < high and low > 0.004 and high < 0.02
    band = difference_band(
        {"errors": 300, "requests": 10_000, "baseline_errors": 100, "baseline_requests": 10_000,
         "limit": 0.015}
    )  # fmt: skip
    assert band is not None and band.against_baseline
    assert band.diff == pytest.approx(0.02)
    assert band.low < 0.02 < band.high and band.low > 0.01
    assert band.limit == pytest.approx(0.005)
    alone = difference_band({"errors": 5, "requests": 100})
    assert alone is not None and not alone.against_baseline and alone.diff == 0.05
    assert difference_band({"errors": 0, "requests": 0}) is None


@pytest.mark.parametrize(
    "data",
    [
        {"rules": ["db"]},
        {"unjudged": ["db"]},
        {"rules": {"db": {"last_verdict": "inconclusive"}, "api": {"last_verdict": "ok"}}},
    ],
)
def test_the_unjudged_rules_are_read_from_whatever_the_ending_event_says(
    data: dict[str, Any],
) -> None:
    events = [ev(600, EventKind.WINDOW_INCONCLUSIVE, **data)]
    _, words = say(window(WindowPhase.INCONCLUSIVE), events)
    assert "ended at 08:10:00 but db could not be judged" in words


def test_the_ending_events_coverage_records_say_how_little_was_judged() -> None:
    gap = {"rule": "db", "judged": 3, "evaluations": 36, "cause": "blind", "reason": "no answer"}
    events = [ev(600, EventKind.WINDOW_INCONCLUSIVE, unjudged=[gap], rules={"db": {}})]
    _, words = say(window(WindowPhase.INCONCLUSIVE), events)
    assert "db could not be judged for most of it (judged 3 of 36 times: no answer)" in words
