"""Unbounded Prometheus answers (issue 13, item 5) against a real Prometheus.

The server holds 200,000 series of ``wd_big``, backfilled with ``promtool tsdb
create-blocks-from openmetrics``. Before the caps, one sample of ``wd_big`` blocked the
event loop ~9 s; now it is an error sample naming the size or the count, and the loop
keeps turning meanwhile.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.servers.prometheus import start_prometheus
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource

SERIES = 200_000


@dataclass(frozen=True)
class BigPrometheus:
    url: str
    at: float  # the instant every series has its one sample


@pytest.fixture(scope="module")
def big_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigPrometheus]:
    tmp = tmp_path_factory.mktemp("big_prom")
    at = float(int(time.time()) - 600)
    source = tmp / "big.om"
    with source.open("w") as f:
        f.write("# HELP wd_big One gauge, many pods.\n# TYPE wd_big gauge\n")
        for i in range(SERIES):
            f.write(f'wd_big{{pod="pod-{i:06d}",service="big"}} 1 {at:.0f}\n')
        f.write("# EOF\n")
    data = tmp / "data"
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with start_prometheus(tmp, [], data=data) as prom:
        yield BigPrometheus(prom.url, at)


def rule(query: str) -> PrometheusRule:
    return PrometheusRule.model_validate(
        {"name": "big", "source": "prometheus", "query": query, "threshold": "> 0"}
    )


@pytest.fixture
async def src(big_prom: BigPrometheus) -> AsyncIterator[PrometheusSource]:
    source = PrometheusSource(big_prom.url, timeout=20.0, retries=0, concurrency=2)
    yield source
    await source.close()


class LoopLag:
    """Measures the longest the event loop went without running a 10 ms ticker.

    ``worst`` is wall time; ``worst_cpu`` the CPU this process spent in its longest
    gap: on a shared machine the wall gap also counts other processes' turns, the CPU
    gap only what this one did meanwhile (a parse holding the GIL counts in full).
    """

    def __init__(self) -> None:
        self.worst = self.worst_cpu = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last, last_cpu = time.monotonic(), time.process_time()
        while True:
            await asyncio.sleep(0.01)
            now, cpu = time.monotonic(), time.process_time()
            self.worst = max(self.worst, now - last - 0.01)
            self.worst_cpu = max(self.worst_cpu, cpu - last_cpu)
            last, last_cpu = now, cpu

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_the_data_is_there(src: PrometheusSource, big_prom: BigPrometheus) -> None:
    sample = await src.sample(rule("count(wd_big)"), SampleContext("w", {}, big_prom.at))
    assert sample.kind is SampleKind.VALUES, sample
    assert sample.series[0].value == SERIES


async def test_200k_series_over_the_size_cap_are_an_error_and_the_loop_keeps_turning(
    src: PrometheusSource, big_prom: BigPrometheus
) -> None:
    async with LoopLag() as lag:
        started = time.monotonic()
        sample = await src.sample(rule("wd_big"), SampleContext("w", {}, big_prom.at))
        took = time.monotonic() - started
    assert sample.kind is SampleKind.ERROR, sample
    assert sample.transient is False
    assert sample.error == (
        "Prometheus's answer is larger than the 8.0 MiB cap (prometheus_max_response_bytes): "
        "aggregate the query (sum by …) or narrow it"
    )
    assert lag.worst < 0.5, f"event loop blocked {lag.worst:.2f}s"
    assert took < 10, took


JUST_UNDER = 'wd_big{pod=~"pod-0[0-8].*"}'  # 90,000 series, 7.98 MiB of JSON


async def test_an_answer_just_under_the_size_cap_is_refused_by_its_count_unparsed(
    src: PrometheusSource, big_prom: BigPrometheus
) -> None:
    # Issue 25, M6: parsing such an answer held the GIL ~0.9 s from its worker thread
    # (the loop stalled as long) and built ~80 MB of objects only to refuse them.
    params = {"query": JUST_UNDER, "time": repr(big_prom.at)}
    raw = httpx.get(f"{big_prom.url}/api/v1/query", params=params, timeout=60).content
    assert 7.5 < len(raw) / (1 << 20) < 8.0, len(raw)  # within the 8 MiB size cap
    tracemalloc.start()
    try:
        async with LoopLag() as lag:
            sample = await src.sample(rule(JUST_UNDER), SampleContext("w", {}, big_prom.at))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sample.kind is SampleKind.ERROR and sample.transient is False, sample
    assert sample.error == (
        "query returned 90,000 series, over the cap of 10,000 (prometheus_max_series): "
        "aggregate it (sum by …) or narrow its selector"
    )
    assert lag.worst_cpu < 0.1, f"the loop stalled on {lag.worst_cpu:.3f}s of this process's CPU"
    assert lag.worst < 0.5, f"event loop blocked {lag.worst:.2f}s"
    assert peak < 50 << 20, f"{peak / (1 << 20):.0f} MiB of Python objects at the peak"


async def test_too_many_series_is_an_error_naming_the_count(big_prom: BigPrometheus) -> None:
    # pods 000000-009999: 10,000 series, over a cap of 5,000, within the size cap.
    source = PrometheusSource(
        big_prom.url, timeout=20.0, retries=0, concurrency=1, max_series=5_000
    )
    try:
        async with LoopLag() as lag:
            sample = await source.sample(
                rule('wd_big{pod=~"pod-00.*"}'), SampleContext("w", {}, big_prom.at)
            )
        assert sample.kind is SampleKind.ERROR, sample
        assert sample.error == (
            "query returned 10,000 series, over the cap of 5,000 (prometheus_max_series): "
            "aggregate it (sum by …) or narrow its selector"
        )
        assert lag.worst < 0.5, f"event loop blocked {lag.worst:.2f}s"
        # Within both caps the same query answers every series.
        roomy = PrometheusSource(big_prom.url, timeout=20.0, retries=0, concurrency=1)
        ok = await roomy.sample(
            rule('wd_big{pod=~"pod-00.*"}'), SampleContext("w", {}, big_prom.at)
        )
        await roomy.close()
        assert ok.kind is SampleKind.VALUES and len(ok.series) == 10_000
    finally:
        await source.close()


async def test_range_queries_have_the_same_caps(big_prom: BigPrometheus) -> None:
    source = PrometheusSource(
        big_prom.url, timeout=20.0, retries=0, concurrency=1, max_series=5_000
    )
    try:
        with pytest.raises(PermanentError, match="query returned 10,000 series"):
            await source.query_range('wd_big{pod=~"pod-00.*"}', big_prom.at - 60, big_prom.at, 60)
    finally:
        await source.close()
