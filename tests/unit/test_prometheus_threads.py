"""The thread-pool path ``watchdog replay`` and bench/scale.py keep using answers like the
async one: the same samples, the same transient/permanent classification."""

from __future__ import annotations

import pytest

from tests.servers.common import free_port
from tests.unit.test_prometheus_source import CTX, FakePrometheus, Reply, ok, rule, vec
from tests.unit.test_prometheus_source import fake as fake
from watchdog.foundation.model import SampleKind
from watchdog.sources.prometheus_threads import ThreadedPrometheusSource


def source(url: str, retries: int = 0) -> ThreadedPrometheusSource:
    return ThreadedPrometheusSource(url, timeout=5.0, retries=retries, concurrency=2)


@pytest.mark.parametrize(
    ("reply", "transient", "text"),
    [
        (Reply(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
         False, "HTTP 400 bad_data: parse error"),
        (Reply(429, "slow down", "text/plain"), True, "HTTP 429"),
        (Reply(200, "<html>proxy login</html>", "text/html"), True, "malformed"),
    ],
)  # fmt: skip
async def test_failures_are_classified_as_on_the_event_loop(
    fake: FakePrometheus, reply: Reply, transient: bool, text: str
) -> None:
    fake.reply = reply
    src = source(fake.url)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.ERROR and sample.transient is transient
    assert sample.error is not None and text in sample.error


async def test_values_retries_and_ranges(fake: FakePrometheus) -> None:
    fake.reply = Reply(body=ok("vector", [vec("2.5", job="a")]))
    src = source(fake.url, retries=1)
    sample = await src.sample(rule(), CTX)
    fake.reply = Reply(body=ok("matrix", [{"metric": {"job": "a"}, "values": [[10, "1"]]}]))
    series = await src.query_range("m", 10.0, 20.0, 10)
    fake.reply = Reply(503, {"status": "error", "errorType": "unavailable", "error": "x"})
    before = len(fake.requests)
    failed = await src.sample(rule(), CTX)
    await src.close()
    assert [(dict(s.labels), s.value) for s in sample.series] == [({"job": "a"}, 2.5)]
    assert series == [({"job": "a"}, [(10.0, 1.0)])]
    assert failed.transient and len(fake.requests) - before == 2


async def test_connection_refused_is_transient() -> None:
    src = source(f"http://127.0.0.1:{free_port()}")
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.ERROR and sample.transient
    assert sample.error is not None and "connection refused" in sample.error
