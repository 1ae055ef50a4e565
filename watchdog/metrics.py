"""The watchdog's own Prometheus metrics, on a registry the composition root owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Counters and histograms the engine and pipeline update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.evaluations = Counter(
            "watchdog_rule_evaluations_total",
            "Rule evaluations by rule and verdict.",
            ["rule", "verdict"],
            registry=registry,
        )
        self.evaluation_seconds = Histogram(
            "watchdog_rule_evaluation_seconds",
            "Time to sample and judge one rule, by source kind.",
            ["source"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.source_errors = Counter(
            "watchdog_source_errors_total",
            "Samples that failed, by source kind.",
            ["source"],
            registry=registry,
        )
        self.rollbacks = Counter(
            "watchdog_rollbacks_total",
            "Rollbacks by service and result.",
            ["service", "result"],
            registry=registry,
        )
        self.reload_ok = Gauge(
            "watchdog_rules_last_reload_successful",
            "1 when the last rule load succeeded.",
            registry=registry,
        )
        self.rules = Gauge("watchdog_rules", "Rules in force.", registry=registry)

    def rules_loaded(self, count: int, *, ok: bool) -> None:
        """Record a rule (re)load."""
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.rules.set(count)
