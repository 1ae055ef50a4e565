"""PrometheusSource against the real Prometheus scraping the demo app."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import structlog
from aiohttp import web

from tests.servers.common import free_port
from tests.servers.prometheus import PromStack, start_prometheus
from watchdog.foundation.model import Sample, SampleKind
from watchdog.plumbing.logs import configure_logging
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource

pytestmark = pytest.mark.integration

RATIO = """
sum(rate(http_requests_total{service="{{ service }}",status=~"5.."}[10s]))
/ sum(rate(http_requests_total{service="{{ service }}"}[10s]))
"""


def rule(query: str = RATIO) -> PrometheusRule:
    return PrometheusRule(name="ratio", source="prometheus", query=query, threshold="> 0.05")


def ctx() -> SampleContext:
    return SampleContext(window_id="w1", variables={"service": "demo"}, at=time.time())


async def sample_until(
    src: PrometheusSource, check: Callable[[Sample], bool], timeout: float = 45.0
) -> Sample:
    """Sample every 0.5 s until ``check`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        sample = await src.sample(rule(), ctx())
        if check(sample) or time.monotonic() > deadline:
            return sample
        await asyncio.sleep(0.5)


def ratio_near(target: float) -> Callable[[Sample], bool]:
    def check(sample: Sample) -> bool:
        return sample.kind is SampleKind.VALUES and abs(sample.series[0].value - target) < 0.01

    return check


@pytest.fixture
async def src(prom_stack: PromStack) -> AsyncIterator[PrometheusSource]:
    source = PrometheusSource(prom_stack.prom_url, timeout=5.0, retries=2, concurrency=4)
    yield source
    await source.close()


async def test_ratio_is_zero_when_healthy(src: PrometheusSource) -> None:
    sample = await sample_until(src, ratio_near(0.0))
    assert sample.kind is SampleKind.VALUES, sample
    assert sample.series[0].value == pytest.approx(0.0, abs=1e-9)
    assert dict(sample.series[0].labels) == {}
    assert await src.ready()


async def test_ratio_follows_injected_errors(prom_stack: PromStack, src: PrometheusSource) -> None:
    prom_stack.demo.set_fault(error_ratio=0.2)
    try:
        sample = await sample_until(src, ratio_near(0.2))
    finally:
        prom_stack.demo.heal()
    assert sample.kind is SampleKind.VALUES, sample
    assert sample.series[0].value == pytest.approx(0.2, abs=0.01)


async def test_slow_prometheus_is_cut_off_by_the_budget() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 5.0)
        return web.json_response({"status": "success", "data": {"resultType": "vector"}})

    app = web.Application()
    app.router.add_get("/api/v1/query", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    source = PrometheusSource(f"http://127.0.0.1:{port}", timeout=0.5, retries=2, concurrency=2)
    try:
        started = time.monotonic()
        sample = await source.sample(rule(), ctx())
        elapsed = time.monotonic() - started
    finally:
        release.set()
        await source.close()
        await runner.cleanup()
    assert sample.kind is SampleKind.ERROR and sample.transient, sample
    assert elapsed < 1.0, elapsed


async def test_stopped_prometheus_is_transient(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logged = io.StringIO()
    configure_logging("info", "json", stream=logged)
    try:
        with start_prometheus(tmp_path, []) as prom:
            source = PrometheusSource(prom.url, timeout=2.0, retries=1, concurrency=2)
            try:
                before = await source.sample(rule("vector(1)"), ctx())
                prom.stop()
                after = await source.sample(rule("vector(1)"), ctx())
                ready = await source.ready()
            finally:
                await source.close()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.reset_defaults()
    assert before.kind is SampleKind.VALUES and before.series[0].value == 1.0
    assert after.kind is SampleKind.ERROR and after.transient, after
    # The port stays in the message: it says which Prometheus could not be reached.
    assert (
        after.error == f"cannot connect to Prometheus at 127.0.0.1:{prom.port}: connection refused"
    )
    assert not ready
    # urllib3 retried (retries=1) and warned about it; the sample already says so.
    assert logged.getvalue() == ""


async def test_shared_by_gives_each_window_its_own_series(src: PrometheusSource) -> None:
    shared = PrometheusRule(
        name="rps",
        source="prometheus",
        query="sum by (service) (rate(http_requests_total[10s]))",
        threshold="> 1000",
        shared_by="service",
    )
    own = rule('sum(rate(http_requests_total{service="{{ service }}"}[10s]))')
    deadline = time.monotonic() + 45
    while True:
        at = time.time()
        windows = [SampleContext(f"w-{s}", {"service": s}, at) for s in ("demo", "other")]
        demo, other = await asyncio.gather(*(src.sample(shared, c) for c in windows))
        alone = await src.sample(own, windows[0])
        if demo.kind is SampleKind.VALUES or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [dict(s.labels) for s in demo.series] == [{"service": "demo"}]
    assert demo.series[0].value == pytest.approx(alone.series[0].value, rel=1e-9)
    assert demo.series[0].value > 0  # the demo app makes its own traffic
    assert other.kind is SampleKind.NO_DATA and 'service="other"' in (other.error or "")


async def test_the_scrape_interval_is_prometheus_own_and_confirmation_waits_one_scrape(
    src: PrometheusSource,
) -> None:
    # The source's setting says 15 s (the default); Prometheus scrapes the demo every 1 s.
    assert await src.intervals.grid("demo") == 1.0 and await src.intervals.grid() == 1.0

    def restored(ago: float) -> SampleContext:
        now = time.time()
        return SampleContext("w1", {"service": "demo"}, now, since=now - ago, restored=True)

    waiting = await src.sample(rule(), restored(0.5))
    assert waiting.kind is SampleKind.NO_DATA
    assert waiting.error == "waiting for the restored version's first scrape (every 1s)"
    # Rolled back 30 s ago: the restored version's own samples answer (once Prometheus
    # has scraped twice since it started: polled, bounded).
    deadline = time.monotonic() + 45
    judged = await src.sample(rule(), restored(30))
    while judged.kind is not SampleKind.VALUES and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        judged = await src.sample(rule(), restored(30))
    assert judged.kind is SampleKind.VALUES, judged
