"""Server-rendered HTML of the status page: windows, rule graphs, ``for`` progress, events.

Every value that reaches the page is escaped with :func:`html.escape` (deployment
fields, rule reasons and step outputs can carry text from watched systems). The page
needs no script to be read; ``/status.js`` only swaps in fresh ``<main>`` content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from watchdog.durations import format_duration
from watchdog.judge.words import evidence_text
from watchdog.model import Event, Window, iso
from watchdog.web.control import RuleView, WindowDetail
from watchdog.web.status_svg import graph

TITLE = "rollback-watchdog"
# Event data fields shown under an event, in this order; "output" is preformatted.
_EVENT_FIELDS = (
    "actor",
    "value",
    "threshold",
    "reason",
    "step",
    "attempt",
    "by",
    "plan",
    "breaching",
    "took",
)


def page(title: str, main: str, *, terminal: bool) -> str:
    """A whole document around ``main`` (what ``?partial=1`` returns alone)."""
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel=stylesheet href="/status.css"></head><body>'
        f'<header><a class=home href="/">{TITLE}</a>'
        "<span id=live class=live aria-live=polite>live</span></header>"
        f'<main id=main data-terminal="{int(terminal)}">{main}</main>'
        '<script src="/status.js" defer></script></body></html>'
    )


def _when(ts: float | None) -> str:
    text = iso(ts) or "-"
    return f'<time datetime="{text}">{escape(text[11:19] if len(text) > 19 else text)}</time>'


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def _badge(text: str) -> str:
    return f'<span class="badge {escape(text)}">{escape(text.replace("_", " "))}</span>'


def window_header(window: Window, now: float, *, link: bool) -> str:
    """Service, version, phase badge and the time left."""
    d = window.deployment
    name = f"{escape(d.service)} {escape(d.version)}"
    if link:
        name = f'<a href="/deployments/{escape(window.id)}">{name}</a>'
    until = window.confirm_until
    left = max(0.0, (window.ends_at if until is None else until) - now)
    left_text = "closed" if window.phase.terminal else f"{format_duration(round(left))} left"
    if until is not None:
        left_text = f"confirming the recovery: {left_text}"
    was = f" · was {escape(d.previous_version)}" if d.previous_version else ""
    reason = f"<p class=reason>{escape(window.reason)}</p>" if window.reason else ""
    shadow = " " + _badge("shadow") if window.shadow else ""
    return (
        f"<h2>{name} {_badge(window.phase.value)}{shadow}</h2>"
        f"<p class=meta>{escape(d.environment)}{was} · window {escape(window.id)} · "
        f"started {_when(window.started_at)} · "
        f"<span class=left>{left_text}</span></p>{reason}"
    )


def _for_progress(rule: RuleView) -> str:
    if rule.for_seconds <= 0 or rule.pending_since is None:
        return ""
    held = max(0.0, (rule.last_eval_at or rule.pending_since) - rule.pending_since)
    done = min(held, rule.for_seconds)
    return (
        f'<p class=for>for: <progress max="{rule.for_seconds:g}" value="{done:g}"></progress> '
        f"{format_duration(round(done))} of {format_duration(rule.for_seconds)}</p>"
    )


def rule_card(rule: RuleView, points: Sequence[Any]) -> str:
    """One rule: verdict, graph, numbers, ``for`` progress and the reason."""
    svg = graph(points, rule.threshold_value, rule.baseline, f"{rule.name} values")
    reason = f"<p class=why>{escape(rule.reason)}</p>" if rule.reason else ""
    if rule.evidence:  # a judge rule: the counts behind its verdict
        reason = f"<p class=evidence>evidence: {escape(evidence_text(rule.evidence))}</p>" + reason
    mode = " " + _badge("shadow") if rule.shadow else ""
    return (
        f'<article class="rule {escape(rule.verdict.value)}" data-rule="{escape(rule.name)}">'
        f"<h3>{escape(rule.name)} {_badge(rule.verdict.value)}{mode}</h3>{svg}"
        f"<p class=nums>value <b>{_num(rule.last_value)}</b> · threshold "
        f"{escape(rule.threshold)} · worst {_num(rule.worst_value)} · "
        f"action {escape(rule.action)}</p>{_for_progress(rule)}{reason}</article>"
    )


def _field(value: object) -> str:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def _event_data(data: Mapping[str, Any]) -> str:
    items = [
        f"<dt>{escape(k)}</dt><dd>{_field(data[k])}</dd>"
        for k in _EVENT_FIELDS
        if data.get(k) not in (None, "")
    ]
    out = f"<dl>{''.join(items)}</dl>" if items else ""
    if data.get("output"):
        out += f"<pre class=output>{escape(str(data['output']))}</pre>"
    return out


def timeline(events: Sequence[Event]) -> str:
    """The journal, oldest first, with step outputs."""
    if not events:
        return "<p class=muted>no events yet</p>"
    rows = [
        f'<li class="ev {escape(e.kind.value)}">{_when(e.at)} '
        f"<span class=kind>{escape(e.kind.value.replace('_', ' '))}</span> "
        f"<span class=msg>{escape(e.message)}</span>{_event_data(e.data)}</li>"
        for e in events
    ]
    return f"<ol class=timeline>{''.join(rows)}</ol>"


def window_section(detail: WindowDetail, now: float, *, link: bool) -> str:
    """A window's whole story: header, rule cards, timeline."""
    w = detail.window
    cards = "".join(rule_card(r, detail.points.get(r.name, ())) for r in detail.rules)
    return (
        f'<section class="window {escape(w.phase.value)}" data-window="{escape(w.id)}" '
        f'data-phase="{escape(w.phase.value)}">{window_header(w, now, link=link)}'
        f"<div class=rules>{cards}</div><h3>Events</h3>{timeline(detail.events)}</section>"
    )


def recent_table(windows: Sequence[Window], now: float) -> str:
    """Closed windows, newest first, one line each."""
    if not windows:
        return "<p class=muted>none yet</p>"
    rows = [
        f'<tr><td><a href="/deployments/{escape(w.id)}">{escape(w.deployment.service)} '
        f"{escape(w.deployment.version)}</a></td><td>{escape(w.deployment.environment)}</td>"
        f"<td>{_badge(w.phase.value)}{' ' + _badge('shadow') if w.shadow else ''}</td>"
        f"<td>{_when(w.updated_at)}</td></tr>"
        for w in windows
    ]
    return (
        "<table class=recent><thead><tr><th>deploy</th><th>env</th><th>phase</th>"
        f"<th>updated</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def index_main(open_details: Sequence[WindowDetail], recent: Sequence[Window], now: float) -> str:
    """The front page: every open window in full, then the recent closed ones."""
    sections = "".join(window_section(d, now, link=True) for d in open_details)
    if not sections:
        sections = "<p class=muted>no deploy is being watched right now</p>"
    return f"<h1>Open windows</h1>{sections}<h1>Recent windows</h1>{recent_table(recent, now)}"
