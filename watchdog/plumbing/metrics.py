"""The watchdog's own Prometheus metrics, on a registry the composition root owns.

Every name carries the ``watchdog_`` prefix (but the standard ``process_*`` and
``python_info``); counters end in ``_total`` and durations in ``_seconds``. Open windows
and blind sources are not counted by hand: collectors ask the engine at scrape time.
deploy/grafana-dashboard.json draws them and deploy/prometheus-alerts.yml alerts on them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from watchdog import __version__
from watchdog.plumbing.loopmetrics import LoopCounter, LoopHistogram

MAX_CHILDREN = 10_000  # labelled children remembered by Metrics.child
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

PhaseCounts = Callable[[], Mapping[str, int]]
"""Open windows by phase, as last seen (synchronous: scrapes run in aiohttp's handler)."""

BlindSources = Callable[[], Mapping[str, bool]]
"""Every source rules have asked, and whether it is blind now."""


class Metrics:
    """Counters, gauges and histograms the engine, pipeline and delivery worker update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # The process itself (CPU, memory, open files, start time) and the Python
        # running it, as every prometheus_client program on the default registry has.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.build_info = Gauge(
            "watchdog_build_info",
            "Always 1; the labels say which watchdog and which Python run here.",
            ["version", "python"],
            registry=registry,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.outbox_pending = Gauge(
            "watchdog_outbox_pending",
            "Notifications waiting in the outbox at the delivery worker's last pass "
            "(counted up to 500).",
            registry=registry,
        )
        self.outbox_oldest = Gauge(
            "watchdog_outbox_oldest_pending_seconds",
            "Age of the oldest notification still waiting in the outbox (0: none).",
            registry=registry,
        )
        # Updated by every evaluation, from the event loop only: no lock (loopmetrics.py)
        self.evaluations = LoopCounter(
            "watchdog_rule_evaluations_total",
            "Rule evaluations by rule and verdict.",
            ["rule", "verdict"],
            registry,
        )
        self.evaluation_seconds = LoopHistogram(
            "watchdog_rule_evaluation_seconds",
            "Time to sample and judge one rule, by source kind.",
            ["source"],
            registry,
            LATENCY_BUCKETS,
        )
        self.source_seconds = LoopHistogram(
            "watchdog_source_sample_seconds",
            "Time a source took to answer one sample, by source kind.",
            ["source"],
            registry,
            LATENCY_BUCKETS,
        )
        self.source_errors = Counter(
            "watchdog_source_errors_total",
            "Samples that failed, by source kind.",
            ["source"],
            registry=registry,
        )
        self.rule_errors = Counter(
            "watchdog_rule_errors_total",
            "Evaluations whose query the source refused (HTTP 400: the rule cannot run), by rule.",
            ["rule"],
            registry=registry,
        )
        self.rollbacks = Counter(
            "watchdog_rollbacks_total",
            "Rollbacks by service and result (rolled_back, rollback_failed).",
            ["service", "result"],
            registry=registry,
        )
        self.would_rollbacks = Counter(
            "watchdog_would_rollback_total",
            "Rollbacks shadow mode would have run (nothing ran), by service and rule.",
            ["service", "rule"],
            registry=registry,
        )
        self.notifications = Counter(
            "watchdog_notifications_total",
            "Notification delivery attempts by channel and result (sent, retry, failed).",
            ["channel", "result"],
            registry=registry,
        )
        self.reload_ok = Gauge(
            "watchdog_rules_last_reload_successful",
            "1 when the last rule load succeeded.",
            registry=registry,
        )
        self.rules = Gauge("watchdog_rules", "Rules in force.", registry=registry)
        self.leader = Gauge(
            "watchdog_leader", "1 while this replica is the leader and may act.", registry=registry
        )
        self.fencing_refused = Counter(
            "watchdog_fencing_refused_total",
            "Writes the store refused because this replica's fencing token was stale "
            "(it had been deposed); the leader resumes what it was doing.",
            registry=registry,
        )
        self.windows_detected = Counter(
            "watchdog_deploys_detected_total",
            "Windows opened by deploy auto-detection, by service.",
            ["service"],
            registry=registry,
        )
        self.windows_refused = Counter(
            "watchdog_windows_refused_total",
            "Deploys not watched because max_open_windows windows were open, by who asked "
            "(api, detect).",
            ["actor"],
            registry=registry,
        )
        self.windows_closed = Counter(
            "watchdog_windows_closed_total",
            "Windows the watch loop closed when their time (or confirmation) ran out, by "
            "outcome: passed, inconclusive, expired_while_held, would_have_rolled_back, "
            "rolled_back, rollback_ineffective.",
            ["outcome"],
            registry=registry,
        )
        for actor in ("api", "detect"):  # at 0 from the start: a dashboard draws a line
            self.windows_refused.labels(actor)
        self.pruned = Counter(
            "watchdog_pruned_rows_total",
            "Rows deleted by retention, by table.",
            ["table"],
            registry=registry,
        )

    def child(self, metric: Counter | Histogram | LoopCounter | LoopHistogram, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once: ``labels()`` locks and validates
        (~2.5 µs), and every evaluation asks three of them."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            if len(self._children) >= MAX_CHILDREN:
                self._children.clear()  # rule names come and go with reloads
            found = self._children[key] = metric.labels(*values)
        return found

    def rules_loaded(self, count: int, *, ok: bool) -> None:
        """Record a rule (re)load."""
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.rules.set(count)

    def rollback(self, service: str, result: str) -> None:
        """Count a finished rollback (``result`` is the window's terminal phase)."""
        self.rollbacks.labels(service, result).inc()

    def would_rollback(self, service: str, rule: str) -> None:
        """Count a rollback a shadow rule or window would have run."""
        self.would_rollbacks.labels(service, rule).inc()

    def notification(self, channel: str, result: str) -> None:
        """Count one delivery attempt: ``sent``, ``retry`` (transient) or ``failed`` (for good)."""
        self.notifications.labels(channel, result).inc()

    def set_leader(self, leading: bool) -> None:
        """Record whether this replica leads."""
        self.leader.set(1 if leading else 0)

    def watch_windows(self, counts: PhaseCounts) -> None:
        """Expose ``watchdog_windows_open{phase}`` read from ``counts`` at each scrape."""
        self.registry.register(WindowsCollector(counts))

    def watch_blindness(self, sources: BlindSources) -> None:
        """Expose ``watchdog_source_blind{source}`` read from ``sources`` at each scrape."""
        self.registry.register(BlindCollector(sources))

    def outbox(self, pending: int, oldest_age: float) -> None:
        """Record the outbox backlog the delivery worker just read."""
        self.outbox_pending.set(pending)
        self.outbox_oldest.set(max(0.0, oldest_age))


class WindowsCollector(Collector):
    """``watchdog_windows_open{phase}``: evaluated at scrape time."""

    def __init__(self, counts: PhaseCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per evaluating phase."""
        family = GaugeMetricFamily(
            "watchdog_windows_open", "Windows still being watched, by phase.", labels=["phase"]
        )
        for phase, count in sorted(self._counts().items()):
            family.add_metric([phase], count)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Describe without calling the source (registration must not touch the store)."""
        return iter(())


class BlindCollector(Collector):
    """``watchdog_source_blind{source}``: 1 while a source cannot answer, else 0."""

    def __init__(self, sources: BlindSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per source the rules have asked."""
        family = GaugeMetricFamily(
            "watchdog_source_blind",
            "1 while a source (Prometheus, a database, a scrape target) fails every poll "
            "of some window's rules: those rules are inconclusive, nothing can fire.",
            labels=["source"],
        )
        for source, blind in sorted(self._sources().items()):
            family.add_metric([source], 1 if blind else 0)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Describe without calling the source."""
        return iter(())
