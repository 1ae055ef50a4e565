"""Message rendering and Slack button authorisation: pure functions."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.notify import render
from watchdog.notify.config import NotifySettings
from watchdog.web.slack import SlackAccess

W = Window("w1", Deployment("api", "prod", "v2", "v1"), WindowPhase.WATCHING, 1.0, 61.0, 1.0)


def ids(phase: WindowPhase) -> list[str]:
    return [b["action_id"] for b in render.buttons(W.with_phase(phase, 2.0))]


def test_buttons_follow_the_phase() -> None:
    assert ids(WindowPhase.WATCHING) == ["watchdog_rollback", "watchdog_hold", "watchdog_ack"]
    assert ids(WindowPhase.HELD) == ["watchdog_rollback", "watchdog_resume", "watchdog_ack"]
    assert ids(WindowPhase.AWAITING_APPROVAL) == [
        "watchdog_approve",
        "watchdog_hold",
        "watchdog_ack",
    ]
    for phase in (WindowPhase.ROLLING_BACK, WindowPhase.ROLLED_BACK, WindowPhase.PASSED):
        assert ids(phase) == []


def test_roll_back_now_is_dangerous_and_confirmed() -> None:
    button = render.buttons(W)[0]
    assert button["style"] == "danger" and button["value"] == "w1"
    assert button["confirm"]["confirm"]["text"] == "Roll back now"


def test_blocks_mention_slack_actors_and_carry_details() -> None:
    event = Event("w1", 3.0, EventKind.HELD, "slack:U0ABC: hold", data={"actor": "slack:U0ABC"})
    blocks = render.blocks(W, event, render.Links("http://wd"))
    assert blocks[1]["text"]["text"] == "<@U0ABC>: hold"
    passed = Event(
        "w1", 3.0, EventKind.WINDOW_PASSED, "passed", data={"rules": {"p95": {"worst": 812.0}}}
    )
    assert render.details(passed) == ["p95: worst 812.0 (last None)"]


HOSTILE = "<!channel> <http://evil.example|runbook> & slack:U0ABC *bold*\nnext"


def test_slack_text_is_escaped_and_only_the_events_own_slack_actor_is_mentioned() -> None:
    typed = Event(
        "w1", 3.0, EventKind.HELD, f"api (x): hold ({HOSTILE})", data={"actor": "api (x)"}
    )
    assert render.mentions(typed) == (
        "api (x): hold (&lt;!channel&gt; &lt;http://evil.example|runbook&gt; &amp; "
        "slack:U0ABC *bold*\nnext)"
    )
    assert render.slack_text(W, typed).startswith("api v2 (prod): api (x): hold (&lt;!channel&gt;")
    clicked = Event(
        "w1", 3.0, EventKind.HELD, "slack:U0ABC: hold <b>", data={"actor": "slack:U0ABC"}
    )
    assert render.mentions(clicked) == "<@U0ABC>: hold &lt;b&gt;"
    claimed = Event("w1", 3.0, EventKind.HELD, "slack:U0ABC: hold", data={"actor": "slack:<!here>"})
    assert render.mentions(claimed) == "slack:U0ABC: hold"


def test_json_for_webhooks_and_pagerduty_is_html_safe_and_decodes_to_the_same_text() -> None:
    body = render.safe_json({"m": HOSTILE, "n": [1, {"k": "a&b"}]})
    assert b"<" not in body and b">" not in body and b"&" not in body
    assert json.loads(body) == {"m": HOSTILE, "n": [1, {"k": "a&b"}]}
    line = render.plain_line(
        W, Event("w1", 1.0, EventKind.RULE_FIRING, "a\n\tb  " + "x" * 2000), 1024
    )
    assert line.startswith("api v2 (prod): a b x") and len(line) == 1024 and "\n" not in line


def test_severity_prefers_the_rule_then_the_kind() -> None:
    assert (
        render.severity(Event("w", 1.0, EventKind.RULE_FIRING, "x", data={"severity": "info"}))
        == "info"
    )
    assert render.severity(Event("w", 1.0, EventKind.ROLLBACK_FAILED, "x")) == "critical"
    assert render.severity(Event("w", 1.0, EventKind.WINDOW_OPENED, "x")) == "info"
    # Missing data is a warning: it never pages as if the deploy were bad.
    assert render.severity(Event("w", 1.0, EventKind.WATCHDOG_BLIND, "x")) == "warning"
    assert render.severity(Event("w", 1.0, EventKind.SELECTOR_UNMATCHED, "x")) == "warning"


def test_access_rules() -> None:
    access = SlackAccess(oncall=frozenset({"UON"}), approvers=frozenset({"UBOSS"}))
    assert access.refusal("UON", "hold", False) is None
    assert access.refusal("UON", "rollback", False) is None
    assert access.refusal("UON", "rollback", True) is not None
    assert access.refusal("UON", "approve", True) == "only approvers may approve a rollback"
    assert access.refusal("UBOSS", "approve", True) is None
    assert access.refusal("UBOSS", "rollback", True) is None
    assert access.refusal("USTRANGER", "ack", False) is not None
    assert access.refusal("UON", "delete", False) == "unknown action 'delete'"


def test_notify_settings_refuse_unknown_channels_and_buttons_without_a_bot() -> None:
    with pytest.raises(ValidationError, match="unknown channel 'email'"):
        NotifySettings.model_validate({"routes": [{"channels": ["email"]}]})
    with pytest.raises(ValidationError, match="needs slack_bot_token"):
        NotifySettings.model_validate({"slack_signing_secret": "abc"})
    ok = NotifySettings.model_validate({"slack_bot_token": "xoxb-1", "webhook_url": "http://h"})
    assert ok.enabled() == ["slack", "webhook"]
    assert "xoxb-1" in ok.secrets()
