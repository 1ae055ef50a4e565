"""Counter increases for the ``scrape`` source: one (window, rule)'s readings folded in,
page by page, and the process behind each page.

Increases are counted the way Prometheus' ``increase()`` does: a reading below the last
is a reset and counts from zero; a series that appears later counts from zero.

A URL behind a load balancer can be answered by two processes in turn, an old pod and a
new one during a rolling deploy. Read as one, their counters look like a reset and then
a huge increase, every other scrape: the old pod's history counted again and again,
"20000 of 200200", rolled a healthy version back (issue 25). So:

* with ``process_start_time_seconds`` on the page, each page names its process. A newer
  process than the one followed is a restart (its counters count from zero); a page
  from an older one, or one followed before, is a second process: that page is not
  judged, and counting goes on with the newest process's own readings;
* without it, a drop followed by readings back at or above those before the drop is
  the same thing seen from the counters, and that page is not judged either.

A reading no counter can hold (NaN, infinite, negative, past 2**53) is never folded
in: the page is not judged, and the next one counts from the readings before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from watchdog.sources.counters import believable

Readings = Mapping[str, Mapping[str, float]]  # selector name -> series key -> reading
Process = float  # the page's (earliest) process_start_time_seconds

TWO_PROCESSES = (
    "two processes answer this URL ({how}): their counters cannot be added up, so this "
    "scrape is not judged; scrape each pod's own address"
)


@dataclass
class Counters:
    """What one (window, rule) remembers between scrapes."""

    last: dict[tuple[str, str], float] = field(default_factory=dict)  # (selector, series)
    increase: dict[str, float] = field(default_factory=dict)  # per selector, accumulated
    started: bool = False  # a page was folded in: the start point is taken
    process: Process | None = None  # the process followed (its start time)
    left: set[Process] = field(default_factory=set)  # processes followed before it
    before_drop: dict[tuple[str, str], float] | None = None  # no start time: before a drop

    def fold(self, readings: Readings, process: Process | None, *, from_zero: bool) -> str | None:
        """Add one page's increases; why the page cannot be judged, or None.

        ``from_zero``: the page's process started after the window opened, so its
        counters hold nothing from before it (the first page counts whole).
        """
        if (bad := _absurd(readings)) is not None:
            return bad
        if not self.started:
            self.started, self.process = True, process
            self._advance(readings, "zero" if from_zero else "start")
            return None
        if process is not None and self.process is not None and process != self.process:
            return self._other_process(readings, process)
        if process is None and self._back_above(readings):
            self.before_drop = dict(self.last)
            self.last.update(_flat(readings))
            return TWO_PROCESSES.format(how="counters went down, then back up")
        dropped = self._advance(readings, "continue")
        self.before_drop = dropped if process is None else None
        return None

    def _other_process(self, readings: Readings, process: Process) -> str | None:
        assert self.process is not None
        if process in self.left or process < self.process:
            return TWO_PROCESSES.format(
                how=f"process_start_time_seconds {process:.0f} and {self.process:.0f}"
            )
        # A restart, like a reset to increase(): the new process is followed from now on
        # and its counters count from zero.
        self.left.add(self.process)
        self.process = process
        self._advance(readings, "zero")
        return None

    def _back_above(self, readings: Readings) -> bool:
        """Whether the page reads like the process before the last drop, still counting."""
        before, now = self.before_drop, _flat(readings)
        common = [k for k in now if before is not None and k in before]
        return bool(common) and all(now[k] >= before[k] for k in common)  # type: ignore[index]

    def _advance(self, readings: Readings, how: str) -> dict[tuple[str, str], float] | None:
        """Fold the readings in; the readings before a drop, if one dropped.

        ``how``: ``continue`` from the last readings, ``start`` (a new process's page is
        only its start point) or ``zero`` (a new process, every series from zero).
        """
        dropped = False
        before_all = dict(self.last)
        for name, series in readings.items():
            added = 0.0
            for key, value in series.items():
                before = self.last.get((name, key)) if how == "continue" else None
                if before is None:
                    before = value if how == "start" else 0.0  # absent before: from zero
                if value < before:
                    dropped = True
                added += value - before if value >= before else value  # down = reset
                self.last[(name, key)] = value
            self.increase[name] = self.increase.get(name, 0.0) + added
        return before_all if dropped else None


def _flat(readings: Readings) -> dict[tuple[str, str], float]:
    return {(name, key): v for name, series in readings.items() for key, v in series.items()}


def _absurd(readings: Readings) -> str | None:
    for name, series in readings.items():
        for value in series.values():
            if not believable(value):
                return (
                    f"a {name} counter read {value:g}, which no counter can hold "
                    "(NaN, infinite, negative or past 2**53): scrape skipped"
                )
    return None
