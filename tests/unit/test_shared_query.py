"""``shared_by``: one Prometheus query serves every window of a rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from tests.unit.test_prometheus_source import AT, FakePrometheus, Reply, ok, source, vec
from tests.unit.test_prometheus_source import fake as fake
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.shared import SharedAnswers

SHARED = PrometheusRule(
    name="errors",
    source="prometheus",
    query="sum by (service) (rate(errors_total[5m]))",
    threshold="> 0.05",
    shared_by="service",
)


def ctx(service: str, at: float = AT, live: bool = True) -> SampleContext:
    return SampleContext(f"w-{service}", {"service": service}, at, live=live)


@pytest.fixture
async def answering(fake: FakePrometheus) -> AsyncIterator[FakePrometheus]:
    fake.reply = Reply(body=ok("vector", [vec("0.2", service="a"), vec("0.01", service="b")]))
    yield fake


async def test_one_query_serves_every_window(answering: FakePrometheus) -> None:
    src = source(answering.url)
    try:
        a, b, c = await asyncio.gather(*(src.sample(SHARED, ctx(s)) for s in "abc"))
        assert len(answering.requests) == 1
        assert answering.params[0]["query"] == SHARED.query
        assert [(s.labels, s.value) for s in a.series] == [({"service": "a"}, 0.2)]
        assert [(s.labels, s.value) for s in b.series] == [({"service": "b"}, 0.01)]
        assert c.kind is SampleKind.NO_DATA and 'service="c"' in (c.error or "")
        await src.sample(SHARED, ctx("a", AT + 0.5))  # within a second: reused
        assert len(answering.requests) == 1
        await src.sample(SHARED, ctx("a", AT + 15))  # the next round asks again
        assert len(answering.requests) == 2
    finally:
        await src.close()


async def test_baseline_samples_are_not_shared_but_still_filtered(
    answering: FakePrometheus,
) -> None:
    src = source(answering.url)
    try:
        past = AT - 3600
        a = await src.sample(SHARED, ctx("a", past, live=False))
        b = await src.sample(SHARED, ctx("b", past, live=False))
        assert len(answering.requests) == 2
        assert [s.value for s in a.series] == [0.2] and [s.value for s in b.series] == [0.01]
    finally:
        await src.close()


async def test_errors_reach_every_window(fake: FakePrometheus) -> None:
    fake.reply = Reply(status=400, body={"status": "error", "errorType": "bad_data"})
    src = source(fake.url)
    try:
        a, b = await asyncio.gather(src.sample(SHARED, ctx("a")), src.sample(SHARED, ctx("b")))
        assert a.kind is b.kind is SampleKind.ERROR and a.transient is False
        assert len(fake.requests) == 1
    finally:
        await src.close()


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    gate = asyncio.Event()
    calls = 0

    async def fetch() -> object:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "answer"

    shared = SharedAnswers()
    first = asyncio.create_task(shared.get("q", AT, fetch))  # type: ignore[arg-type]
    second = asyncio.create_task(shared.get("q", AT, fetch))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == "answer" and calls == 1


def test_shared_by_must_be_a_label_name() -> None:
    with pytest.raises(ValidationError, match="shared_by"):
        PrometheusRule(name="r", source="prometheus", query="up", shared_by="not a label")
