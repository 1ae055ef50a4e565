"""Plain-text rendering of API responses for the ``watchdog deploy`` commands.

Everything printed is passed through :func:`clean` first: messages can carry text from
watched systems, and a terminal must never receive their escape sequences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watchdog.foundation.durations import format_duration
from watchdog.judge.words import evidence_text

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BARS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 20


def clean(value: object, limit: int = 200) -> str:
    """One printable line: control characters become spaces, long text is cut."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[clean(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def number(value: object) -> str:
    """A measurement: ``-`` when absent, 4 significant digits otherwise."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return clean(value)


def when(value: object) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` when absent."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return clean(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: object) -> str:
    """A duration in seconds as ``1m30s``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_duration(float(value))
    return "-"


def sparkline(values: Sequence[object], width: int = SPARK_POINTS) -> str:
    """The last ``width`` values as ``▁▃█``; a missing value is a space."""
    recent = list(values)[-width:]
    nums = [v for v in recent if isinstance(v, int | float) and math.isfinite(v)]
    if not nums:
        return " " * len(recent) if recent else "-"
    lo, hi = min(nums), max(nums)
    top = len(_BARS) - 1
    out = []
    for v in recent:
        if not isinstance(v, int | float) or not math.isfinite(v):
            out.append(" ")
        else:
            out.append(_BARS[0 if hi == lo else round((v - lo) / (hi - lo) * top)])
    return "".join(out)


def render_started(window: Mapping[str, Any]) -> str:
    """``deploy start``: the new window's id, its status page and its API URL."""
    lines = [
        f"opened window {clean(window.get('id'))} for {clean(window.get('service'))} "
        f"{clean(window.get('version'))} ({clean(window.get('environment'))}), "
        f"watching for {seconds(window.get('seconds_left'))}"
        + (" in shadow mode" if window.get("shadow") else ""),
    ]
    if window.get("page"):
        lines.append(f"page: {clean(window.get('page'), 500)}")
    lines.append(f"api:  {clean(window.get('url'), 500)}")
    return "\n".join(lines)


def render_action(action: str, window: Mapping[str, Any]) -> str:
    """``deploy hold|resume|rollback|abort``: what the window's phase is now."""
    return f"{action}: window {clean(window.get('id'))} is now {clean(window.get('phase'))}"


def render_header(window: Mapping[str, Any]) -> list[str]:
    """The lines describing one window."""
    previous = window.get("previous_version")
    was = f" (was {clean(previous)})" if previous else ""
    lines = [
        f"window {clean(window.get('id'))}  {clean(window.get('service'))} "
        f"{clean(window.get('version'))}{was}  [{clean(window.get('environment'))}]",
        f"phase: {clean(window.get('phase'))}   time left: {seconds(window.get('seconds_left'))}"
        f"   started: {when(window.get('started_at'))}   ends: {when(window.get('ends_at'))}",
    ]
    labels = window.get("labels") or {}
    if labels:
        lines.append("labels: " + clean(", ".join(f"{k}={v}" for k, v in labels.items()), 500))
    if window.get("plan"):
        lines.append(f"plan: {clean(window.get('plan'))}")
    if window.get("shadow"):
        lines.append("shadow mode: nothing acts on its own; see would_roll_back events")
    if window.get("confirm_until"):
        lines.append(f"confirming the recovery until {when(window.get('confirm_until'))}")
    if window.get("reason"):
        lines.append(f"reason: {clean(window.get('reason'), 500)}")
    return lines


def in_unit(value: object, unit: object) -> str:
    """A value in the rule's unit (the API's ``unit``: ratio, percent, seconds,
    milliseconds, bytes, count): ``0.2924`` of a ratio is ``29.2 %``. Without a unit,
    as :func:`number`."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return number(value)
    match unit:
        case "ratio":
            return f"{100 * value:.3g} %"
        case "percent":
            return f"{value:.3g} %"
        case "seconds":
            return f"{value * 1000:.3g} ms" if abs(value) < 1 else format_duration(value)
        case "milliseconds":
            return f"{value:.3g} ms" if abs(value) < 1000 else format_duration(value / 1000)
        case "bytes":
            return _bytes(value)
    return number(value)


def _bytes(value: float) -> str:
    for suffix in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.3g} {suffix}"
        value /= 1024
    return f"{value:.3g} TiB"


def for_progress(rule: Mapping[str, Any]) -> str:
    """The ``for`` column: how long a pending rule has breached of how long it must
    (``20s of 1m``, as of its last evaluation), else the ``for`` itself."""
    need = rule.get("for_seconds")
    since, last = _epoch(rule.get("pending_since")), _epoch(rule.get("last_eval_at"))
    if rule.get("verdict") != "pending" or since is None or last is None:
        return seconds(need)
    held = format_duration(max(0.0, last - since))
    return f"{held} of {seconds(need)}"


def _epoch(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def render_rules(rules: Sequence[Mapping[str, Any]]) -> str:
    """The rule table: name, verdict, value (in the rule's unit), threshold, ``for``
    (with a pending rule's progress), last evaluation, sparkline."""
    if not rules:
        return "(no rules)"
    rows = [
        [
            f"{r.get('name')} (shadow)" if r.get("shadow") else r.get("name"),
            r.get("verdict"),
            in_unit(r.get("last_value"), r.get("unit")),
            r.get("threshold"),
            for_progress(r),
            when(r.get("last_eval_at")),
            sparkline([p.get("value") for p in r.get("samples") or []]),
        ]
        for r in rules
    ]
    headers = ["RULE", "VERDICT", "VALUE", "THRESHOLD", "FOR", "LAST EVAL", "RECENT"]
    evidence = [
        f"evidence {clean(r.get('name'))}: {clean(evidence_text(r['evidence']), 500)}"
        for r in rules
        if isinstance(r.get("evidence"), Mapping)
    ]
    return "\n".join([table(headers, rows), *evidence])


def render_events(events: Sequence[Mapping[str, Any]]) -> str:
    """The journal: time, kind, rule, message."""
    if not events:
        return "(no events)"
    rows = [
        [when(e.get("at")), e.get("kind"), e.get("rule") or "-", e.get("message")] for e in events
    ]
    return table(["TIME", "KIND", "RULE", "MESSAGE"], rows)


def render_detail(detail: Mapping[str, Any]) -> str:
    """``deploy status``: header, rules, events."""
    parts = [
        "\n".join(render_header(detail.get("window") or {})),
        "RULES\n" + render_rules(detail.get("rules") or []),
        "EVENTS\n" + render_events(detail.get("events") or []),
    ]
    return "\n\n".join(parts)


def render_list(windows: Sequence[Mapping[str, Any]]) -> str:
    """``deploy list``: one row per window."""
    if not windows:
        return "(no windows)"
    rows = [
        [
            w.get("id"),
            w.get("service"),
            w.get("environment"),
            w.get("version"),
            f"{w.get('phase')} (shadow)" if w.get("shadow") else w.get("phase"),
            when(w.get("started_at")),
            seconds(w.get("seconds_left")),
        ]
        for w in windows
    ]
    return table(["ID", "SERVICE", "ENV", "VERSION", "PHASE", "STARTED", "LEFT"], rows)
