"""Server-rendered HTML of the status page: windows, rule graphs, ``for`` progress, events.

A window opens with its verdict (``status_verdict.py``: one sentence from the phase and
the journal's data) and what to do next (``status_next.py``), then a card per rule
(the value that decided beside the worst and current ones, and a graph: ``status_svg.py``,
or ``status_band.py`` for a judge rule), then the journal with values in their units.

Every value that reaches the page is escaped with :func:`html.escape` (deployment
fields, rule reasons and step outputs can carry text from watched systems). The page
needs no script to be read; ``/status.js`` only swaps in fresh ``<main>`` content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from watchdog.foundation.durations import format_duration
from watchdog.foundation.model import Event, Window, iso
from watchdog.judge.words import evidence_text
from watchdog.lifecycle.control import RuleView, WindowDetail
from watchdog.rulefile.units import seconds_text, value_text
from watchdog.store.base import RulePoint
from watchdog.web.status_band import band_graph
from watchdog.web.status_manual import PlanLookup
from watchdog.web.status_next import next_html, todos
from watchdog.web.status_story import Firing, Story, story_of
from watchdog.web.status_svg import Frame, graph
from watchdog.web.status_verdict import Facts, clock_text, sentence

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


def page(title: str, main: str, *, terminal: bool, signed_in: bool = False) -> str:
    """A whole document around ``main`` (what ``?partial=1`` returns alone); a reader
    ``signed_in`` with a session cookie gets a "Sign out" button."""
    sign_out = (
        '<form class=signout method=post action="/sign-out"><button type=submit>Sign out'
        "</button></form>"
        if signed_in
        else ""
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel=stylesheet href="/status.css"></head><body>'
        f'<header><a class=home href="/">{TITLE}</a><span class=tz>times in UTC</span>'
        f"<span id=live class=live aria-live=polite>live</span>{sign_out}</header>"
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


def window_header(window: Window, now: float, *, link: bool, verdict: str = "") -> str:
    """Service, version and phase badge, the ``verdict`` box, then the details."""
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
    # The verdict already says why; the bare reason is kept for pages without one.
    reason = f"<p class=reason>{escape(window.reason)}</p>" if window.reason and not verdict else ""
    shadow = " " + _badge("shadow") if window.shadow else ""
    return (
        f"<h2>{name} {_badge(window.phase.value)}{shadow}</h2>{verdict}"
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


def limit_text(rule: RuleView) -> str:
    """``> 5 %``: the first clause's operator and bound in the rule's unit; a relative
    threshold keeps its formula beside it."""
    op = rule.threshold.split(" ", 1)[0] if rule.threshold[:1] in "<>=!" else ">"
    if rule.threshold_value is None:
        return rule.threshold
    bound = f"{op} {value_text(rule.threshold_value, rule.unit)}"
    return f"{bound} ({rule.threshold})" if "baseline" in rule.threshold else bound


def _numbers(rule: RuleView, decided: Firing | None) -> str:
    """The value that decided (when the rule fired) beside its worst and the current one."""
    unit = rule.unit
    parts = []
    now = escape(value_text(rule.last_value, unit))
    if decided is not None:
        parts.append(
            f"decided <b>{escape(value_text(decided.value, unit))}</b> at "
            f"{escape(clock_text(decided.at))}"
        )
    else:
        now = f"<b>{now}</b>"
    parts += [f"now {now}", f"worst {escape(value_text(rule.worst_value, unit))}"]
    parts += [f"limit {escape(limit_text(rule))}", f"action {escape(rule.action)}"]
    return f"<p class=nums>{' · '.join(parts)}</p>"


def rule_card(
    rule: RuleView,
    points: Sequence[RulePoint],
    frame: Frame | None = None,
    decided: Firing | None = None,
) -> str:
    """One rule: verdict, graph, the deciding / worst / current values, ``for``, reason
    (``frame``: the window's time span and markers; by default the points' span)."""
    if frame is None:
        times = [p.at for p in points] or [0.0]
        frame = Frame(min(times), max(times))
    # A judge rule draws its evidence (the difference and its band) when it has counts.
    svg = band_graph(points, title=rule.name, frame=frame) if rule.evidence else ""
    svg = svg or graph(
        points,
        threshold=rule.threshold_value,
        baseline=rule.baseline,
        title=f"{rule.name} values",
        unit=rule.unit,
        frame=frame,
    )
    reason = f"<p class=why>{escape(rule.reason)}</p>" if rule.reason else ""
    if rule.evidence:  # a judge rule: the counts behind its verdict
        reason = f"<p class=evidence>evidence: {escape(evidence_text(rule.evidence))}</p>" + reason
    mode = " " + _badge("shadow") if rule.shadow else ""
    fired = " " + _badge("fired") if decided is not None else ""
    return (
        f'<article class="rule {escape(rule.verdict.value)}" data-rule="{escape(rule.name)}">'
        f"<h3>{escape(rule.name)} {_badge(rule.verdict.value)}{fired}{mode}</h3>{svg}"
        f"{_numbers(rule, decided)}{_for_progress(rule)}{reason}</article>"
    )


_SECONDS_FIELDS = frozenset({"took", "duration", "for", "confirm_for"})


def _field(key: str, value: object, unit: str) -> str:
    if key in _SECONDS_FIELDS and isinstance(value, int | float):
        return escape(seconds_text(float(value)))
    if key == "value" and isinstance(value, int | float):
        return escape(value_text(float(value), unit))
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def _event_data(data: Mapping[str, Any], unit: str) -> str:
    items = [
        f"<dt>{escape(k)}</dt><dd>{_field(k, data[k], unit)}</dd>"
        for k in _EVENT_FIELDS
        if data.get(k) not in (None, "", [])
    ]
    out = f"<dl>{''.join(items)}</dl>" if items else ""
    if data.get("output"):
        out += f"<pre class=output>{escape(str(data['output']))}</pre>"
    return out


def timeline(events: Sequence[Event], units: Mapping[str, str] | None = None) -> str:
    """The journal, oldest first, with step outputs (values in their rule's unit)."""
    if not events:
        return "<p class=muted>no events yet</p>"
    units = units or {}
    rows = [
        f'<li class="ev {escape(e.kind.value)}">{_when(e.at)} '
        f"<span class=kind>{escape(e.kind.value.replace('_', ' '))}</span> "
        f"<span class=msg>{escape(e.message)}</span>"
        f"{_event_data(e.data, units.get(e.rule or '', 'count'))}</li>"
        for e in events
    ]
    return f"<ol class=timeline>{''.join(rows)}</ol>"


def _frame(detail: WindowDetail, story: Story, now: float) -> Frame:
    w = detail.window
    end = max(w.updated_at if w.phase.terminal else now, w.started_at + 20)
    pad = max(10.0, 0.03 * (end - w.started_at))  # markers at the end stay off the edge
    return Frame(w.started_at - pad, end + pad, story.markers())


def verdict_box(detail: WindowDetail, story: Story, now: float, plans: PlanLookup | None) -> str:
    """The sentence the page opens with, and what to do next."""
    facts = Facts(story, {r.name: r for r in detail.rules}, detail.points, now)
    tone, words = sentence(facts)
    return (
        f'<div class="verdict {tone}"><p class=sentence>{escape(words)}</p>'
        f"{next_html(todos(facts, plans))}</div>"
    )


def window_section(
    detail: WindowDetail, now: float, *, link: bool, plans: PlanLookup | None = None
) -> str:
    """A window's whole story: verdict, header, rule cards, timeline."""
    w = detail.window
    story = story_of(w, detail.events)
    frame = _frame(detail, story, now)
    cards = "".join(
        rule_card(r, detail.points.get(r.name, ()), frame, story.firings.get(r.name))
        for r in detail.rules
    )
    units = {r.name: r.unit for r in detail.rules}
    return (
        f'<section class="window {escape(w.phase.value)}" data-window="{escape(w.id)}" '
        f'data-phase="{escape(w.phase.value)}">'
        f"{window_header(w, now, link=link, verdict=verdict_box(detail, story, now, plans))}"
        f"<div class=rules>{cards}</div><h3>Events</h3>{timeline(detail.events, units)}</section>"
    )


def recent_table(windows: Sequence[Window], now: float) -> str:
    """Closed windows, newest first, one line each."""
    if not windows:
        return "<p class=muted>none yet</p>"
    rows = [
        f'<tr><td><a href="/deployments/{escape(w.id)}">{escape(w.deployment.service)} '
        f"{escape(w.deployment.version)}</a></td>"
        f"<td class=env>{escape(w.deployment.environment)}</td>"
        f"<td>{_badge(w.phase.value)}{' ' + _badge('shadow') if w.shadow else ''}</td>"
        f"<td>{_when(w.updated_at)}</td></tr>"
        for w in windows
    ]
    return (
        "<table class=recent><thead><tr><th>deploy</th><th class=env>env</th><th>phase</th>"
        f"<th>updated</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def index_main(
    open_details: Sequence[WindowDetail],
    recent: Sequence[Window],
    now: float,
    plans: PlanLookup | None = None,
) -> str:
    """The front page: every open window in full, then the recent closed ones."""
    sections = "".join(window_section(d, now, link=True, plans=plans) for d in open_details)
    if not sections:
        sections = "<p class=muted>no deploy is being watched right now</p>"
    return f"<h1>Open windows</h1>{sections}<h1>Recent windows</h1>{recent_table(recent, now)}"
