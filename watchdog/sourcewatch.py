"""What the engine says about sources after each evaluation, beside the rule's verdict:
"watchdog blind" / "sighted" per source outage (:mod:`watchdog.blindness`), and, once
per (window, rule), a Prometheus selector that matches nothing (:mod:`watchdog.livecheck`).
"""

from __future__ import annotations

from collections.abc import Iterable

from watchdog.blindness import Blindness
from watchdog.journal import Journal
from watchdog.livecheck import SelectorWatch
from watchdog.model import EventKind, Sample, SampleKind, Window
from watchdog.rulefile.load import AnyRule
from watchdog.rulefile.schema import PrometheusRule


class SourceWatch:
    """Journals source outages and unmatched selectors for the engine."""

    def __init__(
        self, journal: Journal, blind_after: int, selectors: SelectorWatch | None = None
    ) -> None:
        self.journal = journal
        self.blindness = Blindness(blind_after)
        self.selectors = selectors

    async def after(
        self, window: Window, rule: AnyRule, sample: Sample, failures: int, now: float
    ) -> None:
        """Account one evaluated sample; ``failures``: the rule's failed polls in a row."""
        for change in self.blindness.observe(window.id, rule, sample, failures):
            await self.journal.record(window, change.kind, change.message, at=now, data=change.data)
        if sample.kind is SampleKind.NO_DATA:
            await self._unmatched(window, rule, now)

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
        """Rules a reload changed or removed."""
        self.blindness.drop_rules(set(names))

    def forget(self, window_id: str) -> None:
        """A window closed."""
        self.blindness.forget(window_id)
        if self.selectors is not None:
            self.selectors.forget(window_id)
