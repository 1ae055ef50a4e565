"""The alert inbox: records what Alertmanager sends and wakes the windows it concerns.

Every alert is recorded, in a window or not (``GET /api/v1/alerts`` shows them). Acting
on one is never done here: the inbox only asks the engine to evaluate the
``alertmanager`` rules of matching open windows now, rather than at their next
interval (when a delivery brings something new: a new occurrence or a resolution),
so the decision takes the usual evaluate → pipeline path (exactly once).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from watchdog.foundation.alerts import Alert, AlertStatus
from watchdog.foundation.clock import Clock
from watchdog.foundation.model import EVALUATING_PHASES, Window
from watchdog.lifecycle.engine import Engine
from watchdog.rulefile.schema import AlertmanagerRule
from watchdog.sources.alertmanager import rule_match
from watchdog.store.base import AlertStore, WindowStore

MAX_STORED = 50_000
"""Alerts kept at most (``max_stored_alerts``); the oldest resolved go first."""

Index = dict[str, dict[str, list[Alert]]]  # label name -> label value -> alerts


class InboxStore(AlertStore, WindowStore, Protocol):
    """What the inbox uses: alerts recorded, open windows to wake."""


@dataclass(frozen=True)
class Receipt:
    """What one delivery did."""

    received: int
    new: int
    windows: list[str] = field(default_factory=list)  # windows woken up


class AlertInbox:
    """Records alert batches and triggers evaluation of the windows they match."""

    def __init__(
        self, store: InboxStore, engine: Engine, clock: Clock, *, max_alerts: int = MAX_STORED
    ) -> None:
        self.store = store
        self._engine = engine
        self._clock = clock
        self._max_alerts = max_alerts

    async def receive(self, alerts: list[Alert]) -> Receipt:
        """Record ``alerts`` (deduplicated by the store) and wake matching windows."""
        now = self._clock.now()
        new = await self.store.record_alerts(alerts, at=now) if alerts else 0
        if new:
            await self.store.cap_alerts(self._max_alerts)  # a storm cannot fill the disk
        rules = [r for r in self._engine.rules.current.rules if isinstance(r, AlertmanagerRule)]
        # A repeat of known firing alerts changes no count: the interval covers it.
        changed = new > 0 or any(a.status is AlertStatus.RESOLVED for a in alerts)
        if not rules or not changed:
            return Receipt(len(alerts), new)
        windows = await self.store.list_windows(phases=EVALUATING_PHASES, limit=100_000)
        index: Index = {}
        woken: list[str] = []
        for window in windows:
            if now >= window.ends_at:
                continue  # the tick closes it; no point evaluating
            hit = [
                r
                for r in rules
                if r.applies(window.deployment)
                and _concerns(r, window, _by_label(index, alerts, r))
            ]
            if hit:
                await self._engine.evaluate_now(window, hit)
                woken.append(window.id)
        return Receipt(len(alerts), new, woken)


def _by_label(index: Index, alerts: list[Alert], rule: AlertmanagerRule) -> dict[str, list[Alert]]:
    """Alerts grouped by the value of the rule's service label (built once per label)."""
    name = rule.service_label
    if name not in index:
        grouped: dict[str, list[Alert]] = defaultdict(list)
        for alert in alerts:
            value = alert.labels.get(name)
            if value is not None:
                grouped[value].append(alert)
        index[name] = grouped
    return index[name]


def _concerns(rule: AlertmanagerRule, window: Window, by_service: dict[str, list[Alert]]) -> bool:
    d = window.deployment
    candidates = by_service.get(d.service, [])
    if not candidates:
        return False
    match = rule_match(rule)
    return any(match.matches(a.labels, d.service, d.environment) for a in candidates)
