"""When each (window, rule) is next due, kept in a heap so a tick touches only what is due.

A tick used to walk every open window's every rule to find the due ones: 100,000 checks
a second at 10,000 windows x 10 rules (bench/scale.py), most of them "not yet". The
:class:`DueQueue` hands a tick the keys whose time has come, earliest first; what the
tick does not start again (a window gone, a rule no longer in force) it simply does not
put back.

A key's due time lives in one dict; the heap may hold stale entries for it (the key
moved, or was dropped), which are skipped when they surface and compacted away when
they outnumber the live ones, so the heap stays bounded by the keys in force.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass

from watchdog.evaluation.evaluate import DUE_SLACK
from watchdog.foundation.model import Window
from watchdog.rulefile.load import AnyRule, RuleSet

Key = tuple[str, str]  # (window id, rule name)
# (the grid it keeps: when it was due, or None for a new grid from its start; window, rule)
Start = tuple[float | None, Window, AnyRule]
COMPACT_AT = 1024  # stale heap entries tolerated before a rebuild (and 2x the live keys)
# Starts per tick: SPREAD x the rules' mean rate, at least MIN_STARTS. A burst of windows
# puts its rules on one tick's grid: bench/scale.py started 10,000 in one tick, holding
# the loop for seconds each interval; the rest now start on later ticks, on their own grid.
MIN_STARTS = 256
SPREAD = 1.5


@dataclass(slots=True)
class Plan:
    """A watched window and the rules it evaluates under ``ruleset``."""

    window: Window
    rules: dict[str, AnyRule]
    rate: float  # evaluations per second its rules ask for
    ruleset: RuleSet


class Schedule:
    """What the engine's tick starts: the due queue, and each watched window's plan."""

    def __init__(self) -> None:
        self.queue = DueQueue()
        self._plans: dict[str, Plan] = {}
        self._last_tick: float | None = None  # for the starts a tick may make
        # due while still in flight: queued again when it finishes (not every tick)
        self._parked: dict[Key, float] = {}

    def plan(self, window: Window, ruleset: RuleSet) -> Plan:
        """The window's rules in force; a window (or rule set) new here has its rules
        queued, due at once."""
        plan = self._plans.get(window.id)
        if plan is not None and plan.ruleset is ruleset:
            plan.window = window  # the view's latest copy (a phase, a confirmation)
            return plan
        rules = ruleset.for_deployment(window.deployment)
        for rule in rules:
            if (key := (window.id, rule.name)) not in self.queue:
                self.queue.put(key, 0.0)
        rate = sum(1 / r.effective_interval for r in rules)
        return Plan(window, {r.name: r for r in rules}, rate, ruleset)

    def due(self, watched: dict[str, Plan], now: float, busy: Container[Key]) -> list[Start]:
        """What to start now, longest due first, at most what a tick needs (x SPREAD);
        the rest stays first in line for the next tick, untouched (a backlog costs a
        tick only what it starts). ``watched``: this tick's plans; a rule in ``busy``
        (still in flight) stays due."""
        self._plans = watched
        last, self._last_tick = self._last_tick, now
        elapsed = max(1.0, now - (last or now))
        most = max(MIN_STARTS, math.ceil(SPREAD * sum(p.rate for p in watched.values()) * elapsed))
        due: list[Start] = []
        while len(due) < most and (entry := self.queue.pop_next(now)) is not None:
            at, key = entry
            plan = watched.get(key[0])
            rule = plan.rules.get(key[1]) if plan is not None else None
            if plan is None or rule is None:
                continue  # closed, or the rule is no longer in force: not queued again
            if key in busy:
                self._parked[key] = at
                continue
            # due before the last tick, it waited for room: a grid of its own from now
            grid = at if last is None or at - DUE_SLACK > last else None
            due.append((grid, plan.window, rule))
        return due

    def run_again(self, key: Key, now: float) -> None:
        """``key`` is due at ``now`` (ahead of its interval: an alert came in)."""
        self.queue.put(key, now)

    def finished(self, key: Key) -> None:
        """``key``'s evaluation ended: due again at once if its time came meanwhile."""
        at = self._parked.pop(key, None)
        if at is not None:
            self.queue.put(key, at)

    def started(self, key: Key, due: float | None, now: float, interval: float) -> None:
        """``key``, due at ``due``, started at ``now``: queue its next turn."""
        self.queue.put(key, next_due(due, now, interval))

    def forget(self, window_id: str) -> None:
        """A window closed: its rules leave the queue."""
        plan = self._plans.pop(window_id, None)
        if plan is not None:  # any other key of it is skipped when it comes due
            self.queue.drop((window_id, name) for name in plan.rules)
        for key in [k for k in self._parked if k[0] == window_id]:
            del self._parked[key]

    def drop_rules(self, names: set[str]) -> None:
        """Rules a reload changed or removed: queued afresh (due at once) next tick."""
        self.queue.drop([k for k in self.queue if k[1] in names])
        self._parked = {k: at for k, at in self._parked.items() if k[1] not in names}
        self._plans.clear()


class DueQueue:
    """Due times of (window, rule) keys; :meth:`pop_next` takes them as their time comes."""

    def __init__(self) -> None:
        self._due: dict[Key, float] = {}
        self._heap: list[tuple[float, Key]] = []

    def __contains__(self, key: Key) -> bool:
        return key in self._due

    def __len__(self) -> int:
        return len(self._due)

    def due_at(self, key: Key) -> float | None:
        """When ``key`` is due, or None when it is not queued."""
        return self._due.get(key)

    def put(self, key: Key, at: float) -> None:
        """Queue ``key`` due at ``at`` (replacing any earlier time)."""
        if self._due.get(key) == at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))
        if len(self._heap) > 2 * len(self._due) + COMPACT_AT:
            self._heap = [(t, k) for k, t in self._due.items()]
            heapq.heapify(self._heap)

    def pop_next(self, now: float) -> tuple[float, Key] | None:
        """The earliest key due by ``now`` (within the tick slack), taken off the queue
        (the caller puts it back to run again), or None when nothing is due."""
        heap = self._heap
        while heap and heap[0][0] <= now + DUE_SLACK:
            at, key = heapq.heappop(heap)
            if self._due.get(key) == at:  # otherwise stale: moved or dropped meanwhile
                del self._due[key]
                return at, key
        return None

    def drop(self, keys: Iterable[Key]) -> None:
        """Forget ``keys`` (their heap entries go stale)."""
        for key in keys:
            self._due.pop(key, None)

    def __iter__(self) -> Iterator[Key]:
        return iter(list(self._due))  # a copy: callers drop what they walk


def next_due(due: float | None, now: float, interval: float) -> float:
    """When a rule due at ``due`` and starting at ``now`` is due again: on its own grid
    (``due + interval``), as counting from ``now`` adds the tick's lateness to every
    interval and so often misses the next tick (bench/scale.py found 1 s rules polled
    every 2 s). A rule that fell a whole interval behind starts a new grid from ``now``."""
    if due is None or due + interval <= now:
        return now + interval
    return due + interval
