"""Fixtures: the fault-injectable demo app and a real Prometheus scraping it.

Helpers (context managers, usable from any fixture or test):

* ``start_demo_app(tmp_path, service="demo", rps=50)`` → :class:`DemoApp`
* ``start_prometheus(tmp_path, targets, scrape_interval="1s", extra_config="")``
  → :class:`PrometheusServer`
* ``wait_for_query(prom_url, query, predicate, timeout)`` → the values once
  ``predicate(values)`` holds

Fixture: ``prom_stack`` (module scope) → :class:`PromStack`, a demo app plus a
Prometheus scraping it every second, already holding its first samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.stack import (
    DemoApp,
    PrometheusServer,
    PromStack,
    prometheus_config,
    query_values,
    start_demo_app,
    start_prometheus,
    wait_for_query,
)
from tests.servers.common import HANG_GUARD

__all__ = [
    "DemoApp",
    "PromStack",
    "PrometheusServer",
    "prom_stack",
    "prometheus_config",
    "query_values",
    "start_demo_app",
    "start_prometheus",
    "wait_for_query",
]


@pytest.fixture(scope="module")
def prom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    """Demo app (service "demo", 50 rps) + Prometheus scraping it every second."""
    tmp = tmp_path_factory.mktemp("prom_stack")
    with start_demo_app(tmp) as demo, start_prometheus(tmp, [demo.target]) as prom:
        wait_for_query(prom.url, 'up{job="demo"}', lambda v: v == [1.0], timeout=HANG_GUARD)
        yield PromStack(demo, prom)
