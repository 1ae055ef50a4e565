"""A counter and a histogram for the watch loop's hottest metrics, without a lock.

prometheus_client's metrics take a lock on every ``inc`` and ``observe``, so that any
thread may update them: an evaluation counted once and timed twice (three labelled
updates, five locked increments) was 7 % of the process at 10,000 windows x 10 rules
(bench/scale.py). These are updated only from the event loop, and read only there too
(``/metrics`` renders in aiohttp's handler): a plain addition is enough.

They are collectors on the same registry and expose what prometheus_client's would
(``_total``; ``_bucket`` with ``le``, ``_count``, ``_sum``), but no ``_created`` series.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar, cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# how prometheus_client writes a bucket's bound (`1.0`, `+Inf`): the same `le` values
_le = cast(Callable[[float], str], floatToGoString)
C = TypeVar("C")


class LoopCount:
    """One labelled child of a :class:`LoopCounter`."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (never negative: a counter only grows)."""
        if amount < 0:
            raise ValueError("a counter only grows")
        self.value += amount


class _Labelled(Collector, Generic[C]):
    """A metric family's children by label values, created on first use."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self._children: dict[tuple[str, ...], C] = {}
        registry.register(self)

    def _new(self) -> C:
        raise NotImplementedError

    def _family(self) -> CounterMetricFamily | HistogramMetricFamily:
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        """The family without samples: the registry refuses a second of its name."""
        yield self._family()

    def labels(self, *values: str) -> C:
        """The child for these label values (created empty on first use)."""
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name} takes labels {self._labelnames}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new()
        return child


class LoopCounter(_Labelled[LoopCount]):
    """A labelled counter updated from the event loop only."""

    def _new(self) -> LoopCount:
        return LoopCount()

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self._name, self._doc, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        """The counter's family, one sample per child (a scrape)."""
        family = self._family()
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class LoopObservations:
    """One labelled child of a :class:`LoopHistogram`."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        """Count one observation in the first bucket whose bound is at least it."""
        self.counts[bisect.bisect_left(self._bounds, amount)] += 1
        self.sum += amount


class LoopHistogram(_Labelled[LoopObservations]):
    """A labelled histogram updated from the event loop only."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        buckets: Sequence[float],
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = bounds
        super().__init__(name, documentation, labelnames, registry)

    def _new(self) -> LoopObservations:
        return LoopObservations(self._bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)

    def collect(self) -> Iterator[Metric]:
        """The histogram's family: cumulative buckets, count and sum per child."""
        family = self._family()
        for values, child in list(self._children.items()):
            running, buckets = 0, []
            for bound, count in zip(self._bounds, child.counts, strict=True):
                running += count
                buckets.append((_le(bound), running))
            family.add_metric(list(values), buckets, child.sum)
        yield family
