""" "Watchdog blind": a *source* cannot answer, told once per outage, not once per rule.

A source is what answers a rule: the Prometheus server (``prometheus`` and ``judge``
rules), a named PostgreSQL or Redis target, a log file, Loki, Sentry, a target a
``scrape`` rule reads, or a scrape job whose targets are all down (``up == 0`` for a
Prometheus rule's ``job``). It cannot answer when a sample fails transiently: refused,
timed out, an HTTP 5xx, a scrape target down. These are not blindness:

* an empty result or a rule the source rejects (it answered: the rule is judged by its
  ``no_data`` or says why it is inconclusive);
* the failure of a rule whose failure is its signal (``on_error: breach``, e.g.
  "DB connection failures"), or of an ``http`` probe, whose failure is its value;
* ``alertmanager`` rules, which read the watchdog's own store.

Per window, a source's outage starts when one of its rules has failed ``blind_after``
polls in a row (``watchdog_blind``, severity warning, once), and ends when every rule
that failed has answered again (``watchdog_sighted``, once): a slow query on a healthy
server cannot make the outage flap. The state is in memory: after a restart an outage
still going on is told once more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from watchdog.foundation.model import EventKind, Sample, SampleKind
from watchdog.rulefile.load import AnyRule
from watchdog.rulefile.schema import Policy
from watchdog.sources.kinds import kind


def source_key(rule: AnyRule) -> str | None:
    """The source a rule's failures are blamed on; None when its failure is its signal.

    Each kind says it (``SourceKind.blind``); a kind missing from the table raises
    rather than going silently unreported."""
    if rule.on_error is Policy.BREACH:
        return None
    return kind(rule.source).blind(rule)


@dataclass(frozen=True)
class Change:
    """An outage starting or ending: the event to journal."""

    kind: EventKind
    source: str
    message: str
    data: dict[str, Any]


MAX_SEEN = 256
"""Sources kept for ``watchdog_source_blind`` (the oldest seen is dropped first)."""


@dataclass
class _Outage:
    failing: set[str] = field(default_factory=set)  # rules whose last sample failed
    told: bool = False


class Blindness:
    """Tracks source outages per window; says when to tell people."""

    def __init__(self, blind_after: int) -> None:
        self.blind_after = blind_after
        self._outages: dict[tuple[str, str], _Outage] = {}  # (window id, source)
        # the sources each window has an outage of: an answered sample looks at its own
        # window's only (scanning them all made 10,000 windows quadratic, bench/scale.py)
        self._of_window: dict[str, set[str]] = {}
        self._seen: dict[str, None] = {}  # sources asked, oldest first (for /metrics)

    def sources(self) -> dict[str, bool]:
        """Every source rules have asked (at most :data:`MAX_SEEN`), True while blind:
        an outage was told for some window and has not ended."""
        blind = {source for (_, source), outage in self._outages.items() if outage.told}
        return {source: source in blind for source in self._seen}

    def _saw(self, source: str) -> None:
        self._seen[source] = None
        if len(self._seen) > MAX_SEEN:  # an unreachable host per sample must not grow it
            del self._seen[next(iter(self._seen))]

    def observe(self, window_id: str, rule: AnyRule, sample: Sample, failures: int) -> list[Change]:
        """Account one sample of ``rule``; ``failures`` is its failed polls in a row."""
        key = source_key(rule)
        if key is None:
            return []
        if sample.kind is SampleKind.ERROR and sample.transient:
            source = sample.unreachable or key
            self._saw(source)
            change = self._failed(window_id, rule, source, sample, failures)
            return [change] if change is not None else []
        self._saw(key)
        return self._answered(window_id, rule.name)

    def _failed(
        self, window_id: str, rule: AnyRule, source: str, sample: Sample, failures: int
    ) -> Change | None:
        outage = self._outages.setdefault((window_id, source), _Outage())
        self._of_window.setdefault(window_id, set()).add(source)
        outage.failing.add(rule.name)
        if outage.told or failures < self.blind_after:
            return None
        outage.told = True
        return Change(
            EventKind.WATCHDOG_BLIND,
            source,
            f"watchdog blind: {source} cannot answer ({sample.error}); its rules are "
            f"inconclusive until it does (first seen by {rule.name}, {failures} polls in a row)",
            {"source": source, "failures": failures, "severity": "warning", "rule": rule.name},
        )

    def _answered(self, window_id: str, rule_name: str) -> list[Change]:
        changes = []
        for source in sorted(self._of_window.get(window_id, ())):
            outage = self._outages[(window_id, source)]
            if rule_name not in outage.failing:
                continue
            outage.failing.discard(rule_name)
            if outage.failing:
                continue
            self._drop((window_id, source))
            if outage.told:
                changes.append(
                    Change(
                        EventKind.WATCHDOG_SIGHTED,
                        source,
                        f"{source} answers again",
                        {"source": source, "severity": "info"},
                    )
                )
        return changes

    def drop_rules(self, names: set[str]) -> None:
        """Forget rules a reload changed or removed (an outage they alone held ends quietly)."""
        for key, outage in list(self._outages.items()):
            outage.failing -= names
            if not outage.failing:
                self._drop(key)

    def forget(self, window_id: str) -> None:
        """Drop the outages of a window that closed."""
        for source in self._of_window.pop(window_id, set()):
            del self._outages[(window_id, source)]

    def _drop(self, key: tuple[str, str]) -> None:
        del self._outages[key]
        sources = self._of_window.get(key[0], set())
        sources.discard(key[1])
        if not sources:
            self._of_window.pop(key[0], None)
