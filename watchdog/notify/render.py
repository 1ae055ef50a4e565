"""How events read to people: plain text, Slack Block Kit with buttons, links.

Pure functions of a window and an event; the channels only transport what this renders.
Button ``action_id`` values are what ``web/slack.py`` dispatches on.

Event messages carry text people typed (an API caller's ``reason`` and note), so each
channel gets it escaped for its own format: Slack mrkdwn escapes ``& < >`` (Slack's
formatting reference: nothing else needs it), so ``<!channel>`` and
``<http://x|disguised>`` arrive as plain text, and the only mentions are those the
watchdog makes (the Slack user who clicked, the on-call list); webhook and PagerDuty
bodies are JSON with ``< > &`` written as ``\\u003c \\u003e \\u0026`` (the same
string once decoded, inert if a receiver pastes it into HTML), and PagerDuty's summary
is one plain line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from watchdog.foundation.model import Event, EventKind, Window, WindowPhase
from watchdog.foundation.secretcheck import without_credentials

_SLACK_ACTOR = re.compile(r"slack:([UW][A-Z0-9]{1,30})")
_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_SPACE = re.compile(r"\s+")

ICONS = {
    EventKind.WINDOW_OPENED: ":eyes:",
    EventKind.WINDOW_MIDPOINT: ":hourglass_flowing_sand:",
    EventKind.WINDOW_PASSED: ":white_check_mark:",
    EventKind.WINDOW_INCONCLUSIVE: ":grey_question:",
    EventKind.WINDOW_EXPIRED_WHILE_HELD: ":hourglass:",
    EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK: ":ghost:",
    EventKind.RULE_PENDING: ":warning:",
    EventKind.RULE_FIRING: ":rotating_light:",
    EventKind.ROLLBACK_SCHEDULED: ":alarm_clock:",
    EventKind.ROLLBACK_STARTED: ":rewind:",
    EventKind.ROLLBACK_SUCCEEDED: ":leftwards_arrow_with_hook:",
    EventKind.ROLLBACK_FAILED: ":x:",
    EventKind.APPROVAL_NEEDED: ":raised_hand:",
    EventKind.ESCALATED: ":mega:",
    EventKind.WATCHDOG_BLIND: ":see_no_evil:",
    EventKind.WOULD_ROLL_BACK: ":ghost:",
    EventKind.RECOVERED: ":white_check_mark:",
    EventKind.ROLLBACK_INEFFECTIVE: ":fire:",
    EventKind.RECOVERY_UNCONFIRMED: ":grey_question:",
    EventKind.SELECTOR_UNMATCHED: ":mag:",
    EventKind.RULE_ERROR: ":no_entry:",
}

CRITICAL_KINDS = frozenset(
    {
        EventKind.RULE_FIRING,
        EventKind.ROLLBACK_SCHEDULED,
        EventKind.ROLLBACK_STARTED,
        EventKind.ROLLBACK_FAILED,
        EventKind.APPROVAL_NEEDED,
        EventKind.ESCALATED,
        EventKind.ROLLBACK_INEFFECTIVE,
        EventKind.RULE_ERROR,  # a rollback rule that cannot run guards nothing
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
    }
)
# Said when a rule's data is missing, not when the deploy is bad: warnings.
WARNING_KINDS = frozenset(
    {
        EventKind.WATCHDOG_BLIND,
        EventKind.SELECTOR_UNMATCHED,
        EventKind.WINDOW_INCONCLUSIVE,  # nothing was judged: not a pass, not a failure
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,  # shadow: amber, nothing acted
    }
)


@dataclass(frozen=True)
class Links:
    """Where messages link to: the watchdog's own pages and Prometheus' graph."""

    base_url: str
    prometheus_url: str | None = None

    def deployment(self, window: Window) -> str:
        """The window's page on the watchdog."""
        return f"{self.base_url.rstrip('/')}/api/v1/deployments/{window.id}"

    def graph(self, query: str | None) -> str | None:
        """Prometheus' graph of a rule's query."""
        if not query or not self.prometheus_url:
            return None
        base = without_credentials(self.prometheus_url).rstrip("/")  # never user:key@
        return f"{base}/graph?g0.expr={quote(query, safe='')}&g0.tab=0"


def severity(event: Event) -> str:
    """The event's severity: the rule's when it has one, else by kind. A rule that is
    only pending is a warning at most, whatever the rule's severity: it may never fire,
    and a page for each one woke people for nothing (7 in 20 healthy minutes)."""
    given = event.data.get("severity")
    if isinstance(given, str) and given in {"info", "warning", "critical"}:
        if event.kind is EventKind.RULE_PENDING and given == "critical":
            return "warning"
        return given
    if event.kind in CRITICAL_KINDS:
        return "critical"
    return "warning" if event.kind in WARNING_KINDS else "info"


def slack_escape(text: str) -> str:
    """Text as Slack mrkdwn shows it literally: ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mentions(event: Event) -> str:
    """The event's message for Slack: escaped, and the Slack user who caused it (its
    ``actor``, only when that is ``slack:U…``) as a mention ``<@U…>``. A ``slack:U…``
    typed into free text stays text."""
    escaped = slack_escape(event.message)
    actor = event.data.get("actor")
    found = _SLACK_ACTOR.fullmatch(actor) if isinstance(actor, str) else None
    if found is None:
        return escaped
    return escaped.replace(found.group(0), f"<@{found.group(1)}>")


def slack_text(window: Window, event: Event) -> str:
    """The plain-text line for Slack (the fallback of a Block Kit message)."""
    return f"{slack_escape(title(window))}: {mentions(event)}"


def slack_details(event: Event) -> list[str]:
    """:func:`details`, escaped for Slack."""
    return [slack_escape(line) for line in details(event)]


def plain_line(window: Window, event: Event, limit: int) -> str:
    """:func:`text` as one line of at most ``limit`` characters (PagerDuty's summary)."""
    line = _SPACE.sub(" ", text(window, event)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def safe_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """JSON whose strings carry ``< > &`` as ``\\u`` escapes (equal once decoded)."""
    # Outside strings JSON never holds these characters, so translating is safe.
    return json.dumps(value, sort_keys=sort_keys).translate(_HTML_SAFE).encode()


def title(window: Window) -> str:
    """``api v2 (prod)``."""
    d = window.deployment
    return f"{d.service} {d.version} ({d.environment})"


def text(window: Window, event: Event) -> str:
    """The plain-text line: Slack's fallback, webhooks, PagerDuty summaries."""
    return f"{title(window)}: {event.message}"


def details(event: Event) -> list[str]:
    """Lines for a rule event (value, threshold, baseline, for) or a pass summary."""
    data = event.data
    lines: list[str] = []
    if "value" in data:
        lines.append(
            f"value {data.get('value')} · threshold {data.get('threshold')} · "
            f"baseline {data.get('baseline')} · for {data.get('for')}s"
        )
    rules = data.get("rules")
    if isinstance(rules, dict):
        for name, r in sorted(rules.items()):
            lines.append(f"{name}: worst {r.get('worst')} (last {r.get('last_verdict')})")
    return lines


def buttons(window: Window, event: Event | None = None) -> list[dict[str, Any]]:
    """The buttons that make sense in the window's phase.

    Shadow mode (a shadow window, or the news is a shadow decision) offers no button
    that acts: only Acknowledge.
    """
    phase = window.phase
    if phase.terminal or phase in (WindowPhase.ROLLING_BACK, WindowPhase.CONFIRMING):
        return []
    shadow = window.shadow or (event is not None and event.kind is EventKind.WOULD_ROLL_BACK)
    if shadow:
        return [_button("ack", "Acknowledge", window)]
    out: list[dict[str, Any]] = []
    if phase is WindowPhase.AWAITING_APPROVAL:
        out.append(_button("approve", "Approve rollback", window, style="primary", confirm=True))
    else:
        out.append(_button("rollback", "Roll back now", window, style="danger", confirm=True))
    if phase is WindowPhase.HELD:
        out.append(_button("resume", "Resume", window))
    else:
        out.append(_button("hold", "Hold", window))
    out.append(_button("ack", "Acknowledge", window))
    return out


def _button(
    op: str, label: str, window: Window, *, style: str | None = None, confirm: bool = False
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": f"watchdog_{op}",
        "text": {"type": "plain_text", "text": label},
        "value": window.id,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = {
            "title": {"type": "plain_text", "text": f"{label}?"},
            "text": {"type": "mrkdwn", "text": f"{label} {title(window)}?"},
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
            **({"style": "danger"} if style == "danger" else {}),
        }
    return button


def blocks(window: Window, event: Event, links: Links) -> list[dict[str, Any]]:
    """The root message of a deployment: where it stands, the latest news, buttons."""
    icon = ICONS.get(event.kind, ":information_source:")
    shadow = " · shadow mode" if window.shadow else ""
    phase = window.phase.value.replace("_", " ")
    head = f"{icon} *{slack_escape(title(window))}* · {phase}{shadow}"
    body = "\n".join([mentions(event), *slack_details(event)])
    link_parts = [f"<{links.deployment(window)}|deployment {window.id}>"]
    graph = links.graph(event.data.get("query"))
    if graph:
        link_parts.append(f"<{graph}|graph>")
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(link_parts)}]},
    ]
    actions = buttons(window, event)
    if actions:
        out.append({"type": "actions", "block_id": f"watchdog:{window.id}", "elements": actions})
    return out


def event_json(event: Event) -> dict[str, Any]:
    """The event as the outbox stores it and webhooks receive it."""
    return {
        "seq": event.seq,
        "window_id": event.window_id,
        "at": event.at,
        "kind": event.kind.value,
        "rule": event.rule,
        "message": event.message,
        "data": dict(event.data),
    }


def event_from_json(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_json`."""
    return Event(
        window_id=str(data["window_id"]),
        at=float(data["at"]),
        kind=EventKind(data["kind"]),
        message=str(data["message"]),
        rule=data.get("rule"),
        data=dict(data.get("data") or {}),
        seq=data.get("seq"),
    )
