"""What happened to a window, read from its journal: the facts the verdict sentence and
the graph markers are made of.

Only the events' kinds, times, rules and structured ``data`` are read, never their
messages (their wording may change), and every field may be missing: a window written
by an older version, or ended by a path that journals less, still gets a story.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchdog.foundation.model import Event, EventKind, Window

# Events that end a window, whatever their phase; the newest one is the window's end.
_ENDINGS = frozenset(
    {
        EventKind.WINDOW_PASSED,
        EventKind.WINDOW_INCONCLUSIVE,
        EventKind.WINDOW_EXPIRED_WHILE_HELD,
        EventKind.WINDOW_WOULD_HAVE_ROLLED_BACK,
        EventKind.WINDOW_ABORTED,
        EventKind.WINDOW_SUPERSEDED,
        EventKind.RECOVERED,
        EventKind.RECOVERY_UNCONFIRMED,
        EventKind.ROLLBACK_INEFFECTIVE,
        EventKind.ROLLBACK_FAILED,
    }
)


@dataclass(frozen=True)
class Firing:
    """A rule's move to firing, as journaled: the value that decided and its limit."""

    rule: str
    at: float
    value: float | None
    threshold: str | None
    for_seconds: float


@dataclass(frozen=True)
class Marker:
    """A moment drawn as a vertical line on every graph of the window."""

    at: float
    label: str
    kind: str  # css class: deploy, rollback, rolled-back, recovered, failed, held


@dataclass(frozen=True)
class Story:
    """The window's journal boiled down to what the page says first."""

    window: Window
    firings: Mapping[str, Firing] = field(default_factory=dict)  # the latest per rule
    first: Mapping[EventKind, Event] = field(default_factory=dict)
    last: Mapping[EventKind, Event] = field(default_factory=dict)
    ended: Event | None = None

    def get(self, kind: EventKind) -> Event | None:
        """The latest event of ``kind``."""
        return self.last.get(kind)

    @property
    def trigger(self) -> Firing | None:
        """The firing that decided: the rollback's trigger, else the first rule to fire."""
        started = self.get(EventKind.ROLLBACK_STARTED) or self.get(EventKind.WOULD_ROLL_BACK)
        name = None
        if started is not None:
            name = started.rule or text(started.data, "trigger")
        if name and name in self.firings:
            return self.firings[name]
        if not self.firings:
            return None
        return min(self.firings.values(), key=lambda f: f.at)

    @property
    def recovered_at(self) -> float | None:
        """When the restored version was back to ok (the rollback's end plus ``took``)."""
        done, recovered = self.get(EventKind.ROLLBACK_SUCCEEDED), self.get(EventKind.RECOVERED)
        if recovered is None:
            return None
        took = number(recovered.data, "took")
        if done is not None and took is not None:
            return done.at + took
        return recovered.at

    def markers(self) -> list[Marker]:
        """Deploy, hold, rollback start and end, recovery: oldest first."""
        out = [Marker(self.window.started_at, "deploy", "deploy")]
        spots = (
            (EventKind.HELD, "held", "held"),
            (EventKind.ROLLBACK_STARTED, "rollback", "rollback"),
            (EventKind.WOULD_ROLL_BACK, "would roll back", "would"),
            (EventKind.ROLLBACK_SUCCEEDED, "rolled back", "rolled-back"),
            (EventKind.ROLLBACK_FAILED, "rollback failed", "failed"),
        )
        for kind, label, css in spots:
            event = self.first.get(kind)
            if event is not None:
                out.append(Marker(event.at, label, css))
        if self.recovered_at is not None:
            out.append(Marker(self.recovered_at, "recovered", "recovered"))
        return sorted(out, key=lambda m: m.at)


def story_of(window: Window, events: Sequence[Event]) -> Story:
    """Read ``events`` (oldest first) into a :class:`Story`."""
    firings: dict[str, Firing] = {}
    first: dict[EventKind, Event] = {}
    last: dict[EventKind, Event] = {}
    ended = None
    for event in events:
        first.setdefault(event.kind, event)
        last[event.kind] = event
        if event.kind in _ENDINGS:
            ended = event
        if event.kind is EventKind.RULE_FIRING and event.rule:
            firings[event.rule] = Firing(
                event.rule,
                event.at,
                number(event.data, "value"),
                text(event.data, "threshold"),
                number(event.data, "for") or 0.0,
            )
    return Story(window, firings, first, last, ended)


def number(data: Mapping[str, Any], key: str) -> float | None:
    """A finite number from event data, or None (missing, text, NaN, a bool)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def text(data: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string from event data, or None."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def names(data: Mapping[str, Any], key: str) -> list[str]:
    """A list of names from event data: a list of strings, a list of records naming
    their ``rule``, or a mapping's keys."""
    value = data.get(key)
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if not isinstance(value, list | tuple):
        return []
    out = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("rule") or item.get("name")
        if isinstance(item, str | int) and not isinstance(item, bool):
            out.append(str(item))
    return out


def records(data: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    """Per-rule records from a list of mappings naming their ``rule`` (others skipped)."""
    value = data.get(key)
    if not isinstance(value, list | tuple):
        return {}
    return {
        str(item["rule"]): item
        for item in value
        if isinstance(item, Mapping) and isinstance(item.get("rule"), str)
    }
