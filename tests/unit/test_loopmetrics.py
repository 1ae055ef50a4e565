"""The lock-free loop metrics expose what prometheus_client's own would."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from watchdog.plumbing.loopmetrics import LoopCounter, LoopHistogram
from watchdog.plumbing.metrics import LATENCY_BUCKETS

OBSERVED = [0.0, 0.004, 0.005, 0.0051, 0.3, 1.0, 7.5, 10.0, 12.0, math.inf]


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text exposition's samples, without prometheus_client's ``_created`` series."""
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]


def test_a_loop_histogram_exposes_what_a_prometheus_client_histogram_does() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    h = Histogram("x_seconds", "Doc.", ["source"], registry=theirs, buckets=LATENCY_BUCKETS)
    mine = LoopHistogram("x_seconds", "Doc.", ["source"], ours, LATENCY_BUCKETS)
    for i, amount in enumerate(OBSERVED):
        source = "prometheus" if i % 3 else "http"
        h.labels(source).observe(amount)
        mine.labels(source).observe(amount)
    assert exposition(ours) == exposition(theirs)
    assert ours.get_sample_value("x_seconds_bucket", {"source": "http", "le": "0.01"}) == 2
    assert ours.get_sample_value("x_seconds_count", {"source": "prometheus"}) == 6


def test_a_loop_counter_exposes_what_a_prometheus_client_counter_does() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    c = Counter("y_total", "Doc.", ["rule", "verdict"], registry=theirs)
    mine = LoopCounter("y_total", "Doc.", ["rule", "verdict"], ours)
    for rule, verdict, amount in [("a", "ok", 1), ("a", "ok", 2.5), ("b", "firing", 1)]:
        c.labels(rule, verdict).inc(amount)
        mine.labels(rule, verdict).inc(amount)
    assert exposition(ours) == exposition(theirs)
    assert ours.get_sample_value("y_total", {"rule": "a", "verdict": "ok"}) == 3.5


def test_loop_metrics_refuse_what_prometheus_client_refuses() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("z_total", "Doc.", ["rule"], registry)
    with pytest.raises(ValueError, match="only grows"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("a", "b")
    histogram = LoopHistogram("w_seconds", "Doc.", ["source"], registry, (0.1, 1))
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        LoopCounter("z_total", "Doc.", ["rule"], registry)  # one name per registry, as theirs
