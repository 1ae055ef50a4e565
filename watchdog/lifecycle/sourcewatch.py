"""What the engine says about sources after each evaluation, beside the rule's verdict:
"watchdog blind" / "sighted" per source outage (:mod:`watchdog.sources.blindness`), and, once
per (window, rule), a Prometheus selector that matches nothing (:mod:`watchdog.rulefile.livecheck`)
or a query Prometheus refuses (HTTP 400: the rule cannot run, said loudly, not as an
"inconclusive" among others; again if it comes back after the rule answered).
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from watchdog.foundation.model import EventKind, Sample, SampleKind, Window
from watchdog.rulefile.livecheck import SelectorWatch
from watchdog.rulefile.load import AnyRule
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.blindness import Blindness
from watchdog.sources.kinds import kind
from watchdog.store.journal import Journal

log = structlog.get_logger("watchdog.sourcewatch")


def refused(rule: AnyRule, sample: Sample) -> bool:
    """Prometheus refused the rule's query (a 400: it will never run as written)."""
    return (
        kind(rule.source).graph is not None  # a kind with a graph link: Prometheus runs it
        and sample.kind is SampleKind.ERROR
        and not sample.transient
        and (sample.error or "").startswith("Prometheus answered HTTP 400")
    )


class SourceWatch:
    """Journals source outages and unmatched selectors for the engine."""

    def __init__(
        self, journal: Journal, blind_after: int, selectors: SelectorWatch | None = None
    ) -> None:
        self.journal = journal
        self.blindness = Blindness(blind_after)
        self.selectors = selectors
        self._refused: set[tuple[str, str]] = set()  # (window, rule) said, until it answers

    async def after(
        self, window: Window, rule: AnyRule, sample: Sample, failures: int, now: float
    ) -> None:
        """Account one evaluated sample; ``failures``: the rule's failed polls in a row."""
        for change in self.blindness.observe(window.id, rule, sample, failures):
            await self.journal.record(window, change.kind, change.message, at=now, data=change.data)
        if sample.kind is SampleKind.NO_DATA:
            await self._unmatched(window, rule, now)
        await self._refusal(window, rule, sample, now)

    async def _refusal(self, window: Window, rule: AnyRule, sample: Sample, now: float) -> None:
        key = (window.id, rule.name)
        if not refused(rule, sample):
            if sample.kind is not SampleKind.ERROR:
                self._refused.discard(key)
            return
        if key in self._refused:
            return
        self._refused.add(key)
        error = (sample.error or "").replace('invalid parameter "query": ', "")
        log.error("rule query refused", window=window.id, rule=rule.name, error=error)
        await self.journal.record(
            window,
            EventKind.RULE_ERROR,
            f"{rule.name} cannot run: Prometheus refused its query ({error}); fix the rule "
            f"({rule.origin or 'its file'}) and reload",
            at=now,
            rule=rule.name,
            data={"severity": "critical", "error": error, "origin": rule.origin},
            notify=True,
        )

    async def _unmatched(self, window: Window, rule: AnyRule, now: float) -> None:
        if self.selectors is None or not isinstance(rule, PrometheusRule):
            return
        problem = await self.selectors.problem(window.id, window.deployment.service, rule, now)
        if problem is not None:
            await self.journal.record(
                window,
                EventKind.SELECTOR_UNMATCHED,
                f"{rule.name} can never fire: {problem}",
                at=now,
                rule=rule.name,
                data={"severity": "warning", "problem": problem},
            )

    def drop_rules(self, names: Iterable[str]) -> None:
        """Rules a reload changed or removed (a changed rule still refused is said again)."""
        gone = set(names)
        self.blindness.drop_rules(gone)
        self._refused = {k for k in self._refused if k[1] not in gone}

    def forget(self, window_id: str) -> None:
        """A window closed."""
        self.blindness.forget(window_id)
        self._refused = {k for k in self._refused if k[0] != window_id}
        if self.selectors is not None:
            self.selectors.forget(window_id)
