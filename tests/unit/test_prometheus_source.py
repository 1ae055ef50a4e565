"""PrometheusSource against a fake Prometheus answering canned bodies on loopback."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.servers.common import free_port
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.promhttp import attempt_timeout

AT = 1_800_000_000.5
CTX = SampleContext(window_id="w1", variables={"service": "api"}, at=AT)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; str → sent as is
    content_type: str = "application/json"
    chunked: bool = False  # no Content-Length: the size is known only by reading


@dataclass
class FakePrometheus:
    """Answers every /api/v1/query with ``reply`` and records what it was asked."""

    url: str = ""
    reply: Reply = field(default_factory=Reply)
    requests: list[web.Request] = field(default_factory=list)
    params: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.params.append(dict(request.query))
        body = self.reply.body
        text = body if isinstance(body, str) else json.dumps(body)
        if self.reply.chunked:
            stream = web.StreamResponse(status=self.reply.status)
            stream.content_type = self.reply.content_type
            stream.enable_chunked_encoding()
            await stream.prepare(request)
            data = text.encode()
            for i in range(0, len(data), 64 << 10):
                await stream.write(data[i : i + (64 << 10)])
            await stream.write_eof()
            return stream
        return web.Response(
            status=self.reply.status, text=text, content_type=self.reply.content_type
        )


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="Prometheus is Ready.\n")


@pytest.fixture
async def fake() -> AsyncIterator[FakePrometheus]:
    fake = FakePrometheus()
    app = web.Application()
    app.router.add_route("*", "/api/v1/query", fake.handle)
    app.router.add_route("*", "/api/v1/query_range", fake.handle)
    app.router.add_get("/-/ready", ready)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


def source(url: str, *, retries: int = 0, token: str | None = None) -> PrometheusSource:
    return PrometheusSource(url, timeout=5.0, retries=retries, concurrency=2, token=token)


def rule(query: str = 'up{service="{{ service }}"}') -> PrometheusRule:
    return PrometheusRule(name="r", source="prometheus", query=query, threshold="> 0")


def ok(result_type: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def vec(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": {"__name__": "m", **labels}, "value": [AT, value]}


VALUE_CASES = [
    pytest.param(
        ok("vector", [vec("1", job="a"), vec("2.5", job="b", code="500"), vec("0", job="c")]),
        [({"job": "a"}, 1.0), ({"job": "b", "code": "500"}, 2.5), ({"job": "c"}, 0.0)],
        id="vector-several-series",
    ),
    pytest.param(ok("vector", [vec("NaN")]), [({}, math.nan)], id="nan"),
    pytest.param(ok("vector", [vec("+Inf")]), [({}, math.inf)], id="plus-inf"),
    pytest.param(ok("vector", [vec("-Inf")]), [({}, -math.inf)], id="minus-inf"),
    pytest.param(ok("scalar", [AT, "0.25"]), [({}, 0.25)], id="scalar"),
]


@pytest.mark.parametrize(("body", "expected"), VALUE_CASES)
async def test_values(fake: FakePrometheus, body: Any, expected: list[Any]) -> None:
    fake.reply = Reply(body=body)
    src = source(fake.url)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.VALUES, sample
    got = [(dict(s.labels), s.value) for s in sample.series]
    assert len(got) == len(expected)
    for (labels, value), (want_labels, want) in zip(got, expected, strict=True):
        assert labels == want_labels
        assert (math.isnan(value) and math.isnan(want)) or value == want
    assert sample.detail


FAILURE_CASES = [
    pytest.param(Reply(body=ok("matrix", [{"metric": {}, "values": [[AT, "1"]]}])), False,
                 "range vector", id="matrix"),
    pytest.param(Reply(body=ok("string", [AT, "hello"])), False, "string", id="string"),
    pytest.param(Reply(400, {"status": "error", "errorType": "bad_data",
                             "error": "parse error at char 3"}), False, "parse error",
                 id="400-bad-data"),
    pytest.param(Reply(422, {"status": "error", "errorType": "execution",
                             "error": "too many samples"}), False, "422", id="422"),
    pytest.param(Reply(503, {"status": "error", "errorType": "timeout", "error": "timed out"}),
                 True, "503", id="503"),
    pytest.param(Reply(429, "slow down", "text/plain"), True, "429", id="429"),
    pytest.param(Reply(200, {"status": "error", "errorType": "bad_data", "error": "nope"}),
                 False, "nope", id="200-status-error"),
    pytest.param(Reply(200, {"status": "error", "errorType": "internal", "error": "boom"}),
                 True, "boom", id="200-status-error-internal"),
    pytest.param(Reply(200, "<html>proxy login</html>", "text/html"), True, "malformed",
                 id="non-json"),
    pytest.param(Reply(200, {"status": "success", "data": {}}), True, "malformed",
                 id="missing-result"),
    pytest.param(Reply(200, ok("vector", [{"metric": {}, "value": [AT, "x"]}])), True,
                 "malformed", id="bad-number"),
    pytest.param(Reply(200, ok("vector", [{"metric": {}, "histogram": [AT, {}]}])), False,
                 "native histogram", id="native-histogram"),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "transient", "text"), FAILURE_CASES)
async def test_failures(fake: FakePrometheus, reply: Reply, transient: bool, text: str) -> None:
    fake.reply = reply
    src = source(fake.url)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.ERROR, sample
    assert sample.transient is transient
    assert sample.error is not None and text in sample.error


async def test_empty_vector_is_no_data(fake: FakePrometheus) -> None:
    fake.reply = Reply(body=ok("vector", []))
    src = source(fake.url)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.NO_DATA


async def test_connection_refused_is_transient() -> None:
    src = source(f"http://127.0.0.1:{free_port()}", retries=1)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.kind is SampleKind.ERROR and sample.transient
    assert sample.error is not None and "connection refused" in sample.error


async def test_retries_5xx_then_reports_it(fake: FakePrometheus) -> None:
    fake.reply = Reply(503, {"status": "error", "errorType": "unavailable", "error": "x"})
    src = source(fake.url, retries=1)
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert sample.transient and len(fake.requests) == 2


async def test_unsafe_variable_is_permanent_and_sends_nothing(fake: FakePrometheus) -> None:
    src = source(fake.url)
    ctx = SampleContext(window_id="w1", variables={"service": 'api"} or vector(1'}, at=AT)
    sample = await src.sample(rule(), ctx)
    missing = await src.sample(rule('up{env="{{ environment }}"}'), CTX)
    await src.close()
    assert sample.kind is SampleKind.ERROR and not sample.transient
    assert missing.kind is SampleKind.ERROR and not missing.transient
    assert fake.requests == []


async def test_query_time_and_timeout_params(fake: FakePrometheus) -> None:
    fake.reply = Reply(body=ok("vector", [vec("1")]))
    src = source(fake.url)
    await src.sample(rule(), CTX)
    await src.close()
    (params,) = fake.params
    assert params["query"] == 'up{service="api"}'
    assert float(params["time"]) == AT
    assert 0 < float(params["timeout"]) <= 5.0


async def test_bearer_token_sent_and_never_echoed(fake: FakePrometheus) -> None:
    fake.reply = Reply(401, {"status": "error", "error": "bad token s3cr3t-t0ken"})
    src = source(fake.url, token="s3cr3t-t0ken")
    sample = await src.sample(rule(), CTX)
    await src.close()
    assert fake.requests[0].headers["Authorization"] == "Bearer s3cr3t-t0ken"
    assert sample.kind is SampleKind.ERROR and not sample.transient
    assert sample.error is not None and "s3cr3t" not in sample.error


async def test_query_range_and_ready(fake: FakePrometheus) -> None:
    fake.reply = Reply(
        body=ok(
            "matrix", [{"metric": {"__name__": "m", "job": "a"}, "values": [[10, "1"], [20, "2"]]}]
        )
    )
    src = source(fake.url)
    series = await src.query_range("m", 10.25, 20.75, 10)
    assert series == [({"job": "a"}, [(10.0, 1.0), (20.0, 2.0)])]
    assert float(fake.params[0]["start"]) == 10.25 and float(fake.params[0]["end"]) == 20.75
    assert await src.ready()
    await src.close()
    down = source(f"http://127.0.0.1:{free_port()}")
    assert not await down.ready()
    await down.close()


def test_attempt_timeout_fits_the_budget() -> None:
    for retries in range(6):
        per = attempt_timeout(2.0, retries)
        backoff = sum(min(0.5, 0.05 * 2**n) for n in range(1, retries))
        assert per * (retries + 1) + backoff <= 2.0 + 1e-9


@pytest.mark.parametrize(
    ("up", "why"),
    [
        ([], "Prometheus has no target"),
        ([{"metric": {}, "value": [AT, "0"]}], "every target is down (up == 0)"),
    ],
)
async def test_a_job_without_targets_up_is_a_failure_of_that_job_and_the_query_is_not_run(
    fake: FakePrometheus, up: list[Any], why: str
) -> None:
    fake.reply = Reply(body=ok("vector", up))
    job_rule = PrometheusRule(
        name="r", source="prometheus", query="sum(x)", threshold="> 0", job="{{ service }}-scrape"
    )
    src = source(fake.url)
    try:
        sample = await src.sample(job_rule, CTX)
    finally:
        await src.close()
    assert sample.kind is SampleKind.ERROR and sample.transient
    assert sample.error == f"scrape job api-scrape: {why}"
    assert sample.unreachable == "Prometheus job api-scrape"
    assert [p["query"] for p in fake.params] == ['max(up{job="api-scrape"})']


BIG = ok("vector", [vec("1", pod=f"pod-{i:06d}") for i in range(20_000)])  # 1.6 MiB


@pytest.mark.parametrize(
    ("chunked", "said"),
    [(False, "is 1.6 MiB, larger"), (True, "is larger")],
    ids=["length", "chunked"],
)
async def test_an_answer_over_the_size_cap_is_an_error_naming_it(
    fake: FakePrometheus, chunked: bool, said: str
) -> None:
    fake.reply = Reply(body=BIG, chunked=chunked)
    src = PrometheusSource(fake.url, timeout=5.0, retries=0, concurrency=1, max_bytes=1 << 20)
    sample = await src.sample(rule(), CTX)
    roomy = PrometheusSource(
        fake.url, timeout=5.0, retries=0, concurrency=1, max_bytes=2 << 20, max_series=20_000
    )
    fits = await roomy.sample(rule(), CTX)
    await src.close()
    await roomy.close()
    assert sample.kind is SampleKind.ERROR and sample.transient is False
    assert sample.error == (
        f"Prometheus's answer {said} than the 1.0 MiB cap (prometheus_max_response_bytes): "
        "aggregate the query (sum by …) or narrow it"
    )
    assert fits.kind is SampleKind.VALUES and len(fits.series) == 20_000


async def test_more_series_than_the_cap_is_an_error_naming_the_count(
    fake: FakePrometheus,
) -> None:
    fake.reply = Reply(body=ok("vector", [vec("1", pod=str(i)) for i in range(6)]))
    src = PrometheusSource(fake.url, timeout=5.0, retries=0, concurrency=1, max_series=5)
    over = await src.sample(rule(), CTX)
    fake.reply = Reply(body=ok("vector", [vec("1", pod=str(i)) for i in range(5)]))
    at_cap = await src.sample(rule(), CTX)
    await src.close()
    assert over.kind is SampleKind.ERROR and over.transient is False
    assert over.error == (
        "query returned 6 series, over the cap of 5 (prometheus_max_series): "
        "aggregate it (sum by …) or narrow its selector"
    )
    assert at_cap.kind is SampleKind.VALUES and len(at_cap.series) == 5
