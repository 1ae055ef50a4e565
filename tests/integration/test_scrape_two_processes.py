"""One scrape URL answered in turn by two processes (an old pod and a new one behind a
load balancer), served as real Prometheus text pages (prometheus_client's own
exposition) by a local HTTP server, read by the real ``scrape`` source.

Issue 25: read as one process, the old pod's history came back as a "reset" and a huge
increase every other scrape, "20000 of 200200", and a healthy version was rolled back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from tests.fakes import serve
from watchdog.foundation.model import Sample, SampleKind
from watchdog.rulefile.telemetry import ScrapeRule
from watchdog.sources.base import SampleContext
from watchdog.sources.scrape import ScrapeSource

OPENED = 1_800_000_000.0
RULE = ScrapeRule.model_validate(
    {
        "name": "api-5xx-ratio-scrape",
        "source": "scrape",
        "url": "http://127.0.0.1/metrics",  # replaced by the server's
        "threshold": "> 5%",
        "errors": {"metric": "http_requests_total", "match": {"status": "5xx"}},
        "total": {"metric": "http_requests_total"},
    }
)


class Pod:
    """One process's /metrics: prometheus_client counters, its own start time."""

    def __init__(self, *, ok: int, errors: int, started: float | None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests.", ["status"], registry=self.registry)
        self.requests.labels("2xx").inc(ok)
        if errors:
            self.requests.labels("5xx").inc(errors)
        if started is not None:
            start = Gauge("process_start_time_seconds", "Start time.", registry=self.registry)
            start.set(started)

    def page(self) -> bytes:
        self.requests.labels("2xx").inc(100)  # healthy traffic between two scrapes
        return generate_latest(self.registry)


@dataclass
class Balancer:
    """Answers each scrape from the next pod in ``order`` (round robin)."""

    pods: list[Pod]
    served: list[int] = field(default_factory=list)

    async def metrics(self, request: web.Request) -> web.Response:
        index = len(self.served) % len(self.pods)
        self.served.append(index)
        body = self.pods[index].page()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")


@pytest.fixture
async def balanced() -> AsyncIterator[tuple[Balancer, ScrapeRule]]:
    balancer = Balancer([])
    app = web.Application()
    app.router.add_get("/metrics", balancer.metrics)
    runner, url = await serve(app)
    yield balancer, RULE.model_copy(update={"url": f"{url}/metrics"})
    await runner.cleanup()


async def scrapes(rule: ScrapeRule, n: int) -> list[Sample]:
    async with httpx.AsyncClient() as client:
        source = ScrapeSource(client)
        ctx = SampleContext("w1", {"service": "api"}, OPENED + 60, True, since=OPENED)
        return [await source.sample(rule, ctx) for _ in range(n)]


def values(samples: list[Sample]) -> list[float]:
    return [s.series[0].value for s in samples if s.kind is SampleKind.VALUES]


@pytest.mark.parametrize("start_time", [True, False], ids=["start time", "no start time"])
async def test_an_old_and_a_new_pod_in_turn_never_read_as_errors(
    balanced: tuple[Balancer, ScrapeRule], start_time: bool
) -> None:
    balancer, rule = balanced
    # The old pod served 100,000 requests, 10,000 of them 5xx long before this deploy.
    # The new one is healthy: two 5xx in its first 100 requests, none since.
    old = Pod(ok=90_000, errors=10_000, started=OPENED - 86_400 if start_time else None)
    new = Pod(ok=0, errors=2, started=OPENED + 5 if start_time else None)
    balancer.pods = [old, new]
    samples = await scrapes(rule, 12)
    assert balancer.served == [0, 1] * 6  # every other page from each pod
    assert values(samples) and all(v <= 2 / 100 for v in values(samples)), samples
    refused = [s for s in samples if s.kind is SampleKind.ERROR]
    assert len(refused) >= 5
    assert all((s.error or "").startswith("two processes answer this URL") for s in refused)
    assert all(not s.transient and "each pod's own address" in (s.error or "") for s in refused)


async def test_once_the_old_pod_is_gone_the_new_one_is_judged_on_its_own_counts(
    balanced: tuple[Balancer, ScrapeRule],
) -> None:
    balancer, rule = balanced
    old = Pod(ok=90_000, errors=10_000, started=OPENED - 86_400)
    new = Pod(ok=0, errors=0, started=OPENED + 5)
    balancer.pods = [old, new]
    async with httpx.AsyncClient() as client:
        source = ScrapeSource(client)
        ctx = SampleContext("w1", {"service": "api"}, OPENED + 60, True, since=OPENED)
        for _ in range(4):
            await source.sample(rule, ctx)
        balancer.pods, balancer.served = [new], []  # the rollout finished
        new.requests.labels("5xx").inc(50)  # the new version fails now: 50 of the next 100
        after = [await source.sample(rule, ctx) for _ in range(2)]
    # The new pod's own counts: 200 requests before, then 100 more and 50 5xx.
    assert [s.kind for s in after] == [SampleKind.VALUES, SampleKind.VALUES]
    assert after[0].series[0].value == pytest.approx(50 / 350)
    assert after[0].detail == "50 of 350 since window start"
