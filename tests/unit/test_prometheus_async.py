"""The prometheus source on the event loop: its requests go through the client it is given
(the app's, whose transport is the tests' seam), big answers are decoded off the loop."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.rules import rules
from tests.world import app_settings
from watchdog import wiring
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import OFF_LOOP_BYTES, PrometheusSource
from watchdog.sources.promparse import split_result, too_many_series_in
from watchdog.store.sqlite import SqliteStore

AT = 1_800_000_000.0


def answer(series: int) -> bytes:
    result = [{"metric": {"pod": f"p{i:07d}"}, "value": [AT, "0.5"]} for i in range(series)]
    return json.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}}
    ).encode()


class Recorder:
    """An httpx transport answering every query with ``body``; keeps the requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, content=self.body, headers={"Content-Type": "application/json"})


ERRORS = 'sum(rate(errors_total{service="{{ service }}"}[5m]))'


async def test_the_source_built_by_wiring_queries_through_the_apps_client(tmp_path: Path) -> None:
    seen = Recorder(answer(1))
    settings = app_settings(
        tmp_path,
        rules(tmp_path).group("g", None).prometheus("errors", ERRORS, above=1),
        prometheus_url="http://prom.test:9090",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(seen)) as client:
        sources = wiring.sources(settings, SqliteStore(":memory:"), client=client)
        rule = next(iter(wiring.checked_rules(settings).rules))
        ctx = SampleContext("w1", {"service": "api"}, AT)
        sample = await sources.get("prometheus").sample(rule, ctx)
        await sources.close()
    assert sample.kind is SampleKind.VALUES and sample.series[0].value == 0.5
    (request,) = seen.requests
    assert request.url.host == "prom.test" and request.url.path == "/api/v1/query"
    assert request.url.params["query"] == 'sum(rate(errors_total{service="api"}[5m]))'


async def test_an_answer_past_the_off_loop_size_is_read_whole() -> None:
    body = answer(5_000)
    assert len(body) > OFF_LOOP_BYTES
    transport = httpx.MockTransport(Recorder(body))
    async with httpx.AsyncClient(transport=transport) as client:
        src = PrometheusSource(
            "http://prom.test", timeout=5, retries=0, concurrency=1, client=client
        )
        rule = PrometheusRule(name="r", source="prometheus", query="x", threshold="> 1")
        sample = await src.sample(rule, SampleContext("w1", {}, AT))
        await src.close()  # not its client: still usable after
        assert not client.is_closed
    assert sample.kind is SampleKind.VALUES and len(sample.series) == 5_000


async def test_basic_auth_reaches_every_request_and_the_job_interval_comes_from_targets() -> None:
    targets = {
        "status": "success",
        "data": {"activeTargets": [{"labels": {"job": "api"}, "scrapeInterval": "5s"}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.dumps(targets).encode() if request.url.path.endswith("/targets") else answer(1)
        return httpx.Response(200, content=body)

    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        src = PrometheusSource(
            "http://prom.test", timeout=5, retries=0, concurrency=1, client=client,
            basic=("reader", "s3cret"), grid=15.0,
        )  # fmt: skip
        grid = await src.intervals.grid("api")
        rule = PrometheusRule(name="r", source="prometheus", query="x", threshold="> 1")
        restored = SampleContext("w1", {}, AT, since=AT - 3, restored=True)
        waiting = await src.sample(rule, restored)
        later = await src.sample(rule, SampleContext("w1", {}, AT, since=AT - 6, restored=True))
    assert grid == 5.0  # Prometheus' own interval, not the 15 s fallback
    assert waiting.kind is SampleKind.NO_DATA and "first scrape (every 5s)" in str(waiting.error)
    assert later.kind is SampleKind.VALUES
    expected = httpx.BasicAuth("reader", "s3cret").auth_flow(httpx.Request("GET", "http://x"))
    header = next(expected).headers["Authorization"]
    assert [r.headers.get("Authorization") for r in seen] == [header, header]
    assert seen[0].url.params["state"] == "active" and seen[1].url.path == "/api/v1/query"


TRICKY = {"metric": "x", "path": '"metric":{"a":1}', "le": "{"}  # a label named metric


def compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def vector(*metrics: dict[str, str]) -> dict[str, object]:
    result = [{"metric": m, "value": [AT, "1"]} for m in metrics]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


COUNTED = {
    "compact, as Prometheus writes it": (compact(json.loads(answer(3))), 3),
    "spaced, as json.dumps writes it": (answer(4), 4),
    "label values and names that look like an element": (compact(vector(TRICKY, {})), 2),
    "a matrix": (
        compact({"data": {"result": [{"metric": {"a": "b"}, "values": [[AT, "1"]] * 50}]}}),
        1,
    ),
}


@pytest.mark.parametrize(("body", "count"), COUNTED.values(), ids=COUNTED.keys())
def test_series_are_counted_on_the_raw_answer_exactly(body: bytes, count: int) -> None:
    assert too_many_series_in(body, count) is None
    assert too_many_series_in(body, count - 1) == (
        f"query returned {count:,} series, over the cap of {count - 1:,} "
        "(prometheus_max_series): aggregate it (sum by …) or narrow its selector"
    )


SHAPES = {
    "compact vector": compact(vector({"pod": "a"}, {"pod": "b"})),
    "spaced, pretty-printed": json.dumps(vector({"pod": "a"}), indent=2).encode(),
    "labels named result, values quoting it": compact(
        vector({"result": '"result":[1]', "x": "]"}, {"result": "["})
    ),
    "empty": compact(vector()),
    "data before status": compact({"data": {"result": [1, "2"], "resultType": "scalar"}}),
    "a matrix": compact(
        {
            "status": "success",
            "data": {"result": [{"metric": {}, "values": [[AT, "1"], [AT + 15, "2"]]}]},
        }
    ),
}


@pytest.mark.parametrize("body", SHAPES.values(), ids=SHAPES.keys())
def test_a_result_decoded_element_by_element_is_the_whole_parse(body: bytes) -> None:
    split = split_result(body)
    assert split is not None
    envelope, items = split
    whole = json.loads(body)
    assert items == whole["data"]["result"]
    assert {**envelope, "data": {**envelope["data"], "result": items}} == whole


NOT_SHAPED = {
    "no result": b'{"status":"error","errorType":"bad_data","error":"parse error"}',
    "cut short": compact(vector({"pod": "a"}, {"pod": "b"}))[:-30],
    "not an array": b'{"status":"success","data":{"result":{"a":1}}}',
    "another result first": b'{"stats":{"result":[1]},"data":{"result":[]}}',
    "nested too deep": b'{"data":{"result":[' + b"[" * 100 + b"]" * 100 + b"]}}",
    "not UTF-8": b'{"data":{"result":["\xff"]}}',
}


@pytest.mark.parametrize("body", NOT_SHAPED.values(), ids=NOT_SHAPED.keys())
def test_an_answer_not_shaped_for_it_is_left_to_the_whole_parse(body: bytes) -> None:
    assert split_result(body) is None
