"""``shared_by``: one Prometheus query serves every window of a rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.test_prometheus_source import AT, FakePrometheus, Reply, ok, source, vec
from tests.unit.test_prometheus_source import fake as fake
from watchdog.foundation.model import Sample, SampleKind
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources import promparse
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.promparse import MALFORMED
from watchdog.sources.scrape_interval import ScrapeIntervals
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
        await src.sample(SHARED, ctx("a", AT + 15))  # a scrape interval on: asks again
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


def scraping_every(src: PrometheusSource, seconds: int) -> list[int]:
    """Make Prometheus say it scrapes every ``seconds``; count the answers decoded."""

    async def targets() -> object:
        target = {"labels": {"job": "api"}, "scrapeInterval": f"{seconds}s"}
        return {"data": {"activeTargets": [target]}}

    src.intervals = ScrapeIntervals(targets, fallback=15.0, monotonic=lambda: 0.0)
    decoded, parse = [0], src._parse_instant

    def counting(answer: Any, raw: bool) -> Any:
        decoded[0] += 1
        return parse(answer, raw)

    src._parse_instant = counting  # type: ignore[method-assign]
    return decoded


async def test_an_answer_serves_windows_for_one_scrape_interval(
    answering: FakePrometheus,
) -> None:
    src = source(answering.url)
    decoded = scraping_every(src, 10)
    try:
        a = await src.sample(SHARED, ctx("a", AT))
        b = await src.sample(SHARED, ctx("b", AT + 3))  # opened 3 s later, same scrape
        assert len(answering.requests) == 1 and decoded == [1]
        assert [s.value for s in a.series] == [0.2] and [s.value for s in b.series] == [0.01]
        await src.sample(SHARED, ctx("a", AT + 9.9))
        assert len(answering.requests) == 1
        await src.sample(SHARED, ctx("b", AT + 10))  # the next scrape may have landed
        assert len(answering.requests) == 2 and decoded == [2]
        assert answering.params[1]["time"] == repr(AT + 10)
    finally:
        await src.close()


async def test_reuse_is_capped_by_the_rules_interval(answering: FakePrometheus) -> None:
    src = source(answering.url)
    scraping_every(src, 60)
    fast = SHARED.model_copy(update={"interval": 5.0})
    try:
        await src.sample(fast, ctx("a", AT))
        await src.sample(fast, ctx("b", AT + 4))
        assert len(answering.requests) == 1
        await src.sample(fast, ctx("a", AT + 5))  # its next round reads fresh data
        assert len(answering.requests) == 2
    finally:
        await src.close()


async def test_a_failed_answer_is_reused_for_a_second_at_most(fake: FakePrometheus) -> None:
    fake.reply = Reply(status=503, body="down")
    src = source(fake.url)
    scraping_every(src, 30)
    try:
        first = await src.sample(SHARED, ctx("a", AT))
        await src.sample(SHARED, ctx("b", AT + 0.5))
        assert first.kind is SampleKind.ERROR and len(fake.requests) == 1
        fake.reply = Reply(body=ok("vector", [vec("0.2", service="a")]))
        again = await src.sample(SHARED, ctx("a", AT + 2))  # Prometheus is back
        assert len(fake.requests) == 2 and [s.value for s in again.series] == [0.2]
    finally:
        await src.close()


def test_shared_by_must_be_a_label_name() -> None:
    with pytest.raises(ValidationError, match="shared_by"):
        PrometheusRule(name="r", source="prometheus", query="up", shared_by="not a label")


async def test_answers_that_can_serve_no_one_are_dropped() -> None:
    """Young windows ask many variants of a query: each is held only while it serves."""
    shared = SharedAnswers()

    async def fetch() -> Any:
        return Sample.no_data("none")

    await shared.get("rate(x[15s])", AT, fetch, max_age=10.0)
    await shared.get("rate(x[30s])", AT + 5, fetch, max_age=10.0)
    assert len(shared._answers) == 2
    await shared.get("rate(x[45s])", AT + 10, fetch, max_age=10.0)
    assert sorted(shared._answers) == ["rate(x[30s])", "rate(x[45s])"]


async def test_a_shared_answer_builds_only_the_asking_windows_series(
    fake: FakePrometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 services in one answer, two windows asking: two series built, not 10,000
    (young windows' cuts are asked by few windows each, sources/window_range.py); what
    a window reads is what the whole parse gave it, and a bad series is its own
    window's problem, not every window's."""
    others = [vec("0.5", service=f"svc{i}") for i in range(10_000)]
    bad = {"metric": {"service": "broken"}, "value": [AT, "not a number"]}
    fake.reply = Reply(body=ok("vector", [vec("0.2", service="a", pod="p1"), *others, bad]))
    built: list[Any] = []
    real = promparse._series

    def counted(element: Any) -> Any:
        built.append(element)
        return real(element)

    monkeypatch.setattr(promparse, "_series", counted)
    src = PrometheusSource(fake.url, timeout=5.0, retries=0, concurrency=2, max_series=20_000)
    try:
        a, one = await asyncio.gather(src.sample(SHARED, ctx("a")), src.sample(SHARED, ctx("svc7")))
        broken = await src.sample(SHARED, ctx("broken"))
    finally:
        await src.close()
    assert len(fake.requests) == 1 and len(built) == 3
    assert [(s.labels, s.value) for s in a.series] == [({"service": "a", "pod": "p1"}, 0.2)]
    assert a.detail == "1 of 10002 shared series"
    assert [(s.labels, s.value) for s in one.series] == [({"service": "svc7"}, 0.5)]
    assert broken.kind is SampleKind.ERROR and broken.error == MALFORMED


async def test_a_shared_answer_is_held_as_pairs(fake: FakePrometheus) -> None:
    """An answer lives a scrape interval with one series per window: each is held as a
    labels dict and a value's text, not as decoded (a dict, a list and a float, ~220
    bytes more); the windows read the same series."""
    elements = [vec(f"0.{i}", service=f"svc{i}") for i in range(1, 1000)]
    fake.reply = Reply(body=ok("vector", elements))
    src = source(fake.url)
    try:
        one = await src.sample(SHARED, ctx("svc7"))
    finally:
        await src.close()
    ((answer, index),) = src._shared._indexes.values()
    assert {type(e) for e in answer} == {tuple}
    assert {type(found) for found in index.values()} == {tuple}
    assert index["svc7"] == (({"__name__": "m", "service": "svc7"}, "0.7"),)
    assert [(s.labels, s.value) for s in one.series] == [({"service": "svc7"}, 0.7)]


@pytest.mark.parametrize(
    ("result_type", "result", "kind", "error"),
    [
        ("scalar", [AT, "3"], SampleKind.NO_DATA, 'no series with service="a"'),
        ("vector", [], SampleKind.NO_DATA, "empty result"),
        ("matrix", [{"metric": {"service": "a"}, "values": [[AT, "1"]]}], SampleKind.ERROR,
         "range vector"),
    ],
)  # fmt: skip
async def test_a_shared_answer_that_is_no_vector_means_the_same_for_every_window(
    fake: FakePrometheus, result_type: str, result: Any, kind: SampleKind, error: str
) -> None:
    fake.reply = Reply(body=ok(result_type, result))
    src = source(fake.url)
    try:
        a, b = await asyncio.gather(src.sample(SHARED, ctx("a")), src.sample(SHARED, ctx("b")))
    finally:
        await src.close()
    assert a.kind is kind and error in (a.error or "")
    assert b.kind is kind and (b.error or "").replace('"b"', '"a"') == a.error
