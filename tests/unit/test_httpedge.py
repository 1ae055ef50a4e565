"""The HTTP edge on its own: decoding bounds, the one classifier, Retry-After, JSON depth,
scrubbed excerpts. Answers come from ``httpx.MockTransport`` with streamed bodies (the
edge reads them raw, as it reads the network)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.plumbing import httpedge
from watchdog.plumbing.logs import Redactor


class Chunks(httpx.AsyncByteStream):
    """A body delivered piece by piece, counting what the reader pulled."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = pieces
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            self.pulled += 1
            yield piece


def client_for(
    status: int, body: Chunks | bytes, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        stream = body if isinstance(body, Chunks) else Chunks([body])
        return httpx.Response(status, headers=headers or {}, stream=stream)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def fetch(client: httpx.AsyncClient, cap: int = 1024, **kw: object) -> httpedge.Answer:
    return await httpedge.fetch(
        client, "GET", "http://up.example/x", what="up", timeout=5, max_bytes=cap, **kw
    )  # type: ignore[arg-type]


async def test_gzip_is_inflated_only_up_to_the_cap() -> None:
    packed = gzip.compress(bytes(8 << 20))  # 8 MiB of zeros, 8 KiB on the wire
    pieces = Chunks([packed[i : i + 512] for i in range(0, len(packed), 512)])
    client = client_for(200, pieces, {"Content-Encoding": "gzip"})
    with pytest.raises(PermanentError, match=r"up: answer exceeds 1024 bytes \(decoded\)"):
        await fetch(client)
    assert pieces.pulled == 1  # the first 512 wire bytes already decode past the cap
    head = await fetch(client_for(200, packed, {"Content-Encoding": "gzip"}), keep_head=True)
    assert head.truncated and head.body == bytes(1024)


async def test_small_gzip_and_deflate_and_several_gzip_members_decode_whole() -> None:
    two = gzip.compress(b'{"a":') + gzip.compress(b"1}")
    answer = await fetch(client_for(200, two, {"Content-Encoding": "gzip"}))
    assert answer.body == b'{"a":1}' and not answer.truncated
    answer = await fetch(client_for(200, zlib.compress(b"ok"), {"Content-Encoding": "deflate"}))
    assert answer.body == b"ok"


async def test_an_encoding_not_asked_for_is_refused_and_corruption_is_transient() -> None:
    with pytest.raises(PermanentError, match="unsupported Content-Encoding 'br'"):
        await fetch(client_for(200, b"x", {"Content-Encoding": "br"}))
    with pytest.raises(TransientError, match="compressed answer is corrupt"):
        await fetch(client_for(200, b"not gzip at all", {"Content-Encoding": "gzip"}))


async def test_only_the_head_of_an_error_answer_is_read() -> None:
    pieces = Chunks(b"e" * 1024 for _ in range(1000))  # 1 MB error page
    answer = await fetch(client_for(500, pieces), cap=1 << 20)
    assert answer.status == 500 and len(answer.body) == httpedge.ERROR_HEAD
    assert pieces.pulled == httpedge.ERROR_HEAD // 1024 + 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(200, "ok"), (204, "ok"), (301, "permanent"), (400, "permanent"), (404, "permanent"),
     (408, "transient"), (425, "transient"), (429, "transient"), (500, "transient"),
     (503, "transient")],
)  # fmt: skip
def test_one_classifier(status: int, kind: str) -> None:
    assert httpedge.classify(status) == kind


def test_judge_quotes_the_body_and_keeps_retry_after() -> None:
    answer = httpedge.Answer(429, httpx.Headers({"Retry-After": "7"}), b"slow   down\n")
    with pytest.raises(TransientError, match="up: HTTP 429: slow down") as info:
        httpedge.judge(answer, "up")
    assert info.value.retry_after == 7.0
    moved = httpedge.Answer(302, httpx.Headers({"Location": "http://evil/"}), b"")
    with pytest.raises(PermanentError, match="redirects are not followed"):
        httpedge.judge(moved, "up")


def test_retry_after_as_a_date_is_measured_against_the_answers_date() -> None:
    date, later = "Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:45 GMT"
    assert httpedge.parse_retry_after(later, date, now=0.0) == 45.0
    assert httpedge.parse_retry_after("garbage", date, now=0.0) is None


async def test_redirects_are_not_followed() -> None:
    client = client_for(302, b"", {"Location": "http://elsewhere.example/"})
    answer = await fetch(client)
    assert answer.status == 302


async def test_json_depth_is_limited_and_deep_json_is_a_value_error() -> None:
    assert await httpedge.parse_json(b'{"a": [[1, {"b": 2}]]}') == {"a": [[1, {"b": 2}]]}
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
        await httpedge.parse_json(deep)
    assert httpedge.loads(b"[" * 64 + b"]" * 64) is not None
    with pytest.raises(ValueError, match="nested deeper than 64"):
        httpedge.loads(b"[" * 65 + b"]" * 65)
    big = json.dumps([{"k": "[[[[" * 50} for _ in range(5000)]).encode()  # > INLINE_JSON
    assert len(await httpedge.parse_json(big)) == 5000  # brackets in strings are not nesting
    with pytest.raises(ValueError, match="not JSON"):
        await httpedge.parse_json(b"{nope")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"b": [1.5, "x"], "a": null}', {"b": [1.5, "x"], "a": None}),
        (b'{"a": 1, "a": 2}', {"a": 2}),  # the last of a repeated key, as json does
        (b"[18446744073709551616]", [2**64]),  # past 64 bits: orjson refuses, json reads
        (b'{"v": "\\ud800"}', {"v": "\ud800"}),  # a lone surrogate, likewise
    ],
)
def test_json_decodes_as_the_standard_library_does(body: bytes, expected: object) -> None:
    """orjson decodes first; what it refuses and json accepts, json decides (same
    values, same errors)."""
    assert httpedge.loads(body) == json.loads(body) == expected
    nan = httpedge.loads(b'{"v": NaN, "w": -Infinity}')
    assert nan["v"] != nan["v"] and nan["w"] == float("-inf")


async def test_transport_failures_are_transient_and_name_the_upstream() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(
        TransientError, match=r"^cannot connect to up at up\.example: connection refused$"
    ):
        await fetch(client)


def test_quoted_upstream_text_is_scrubbed_of_configured_secrets() -> None:
    secret = "sntrys-very-secret-token-0123456789"
    httpedge.set_scrubber(Redactor([secret]).scrub)
    try:
        echoed = f"bad auth: {{'Authorization': 'Bearer {secret}', 'X': 'https://u:pw@h/'}}"
        answer = httpedge.Answer(401, httpx.Headers(), echoed.encode())
        with pytest.raises(PermanentError) as info:
            httpedge.judge(answer, "Sentry")
        assert secret not in str(info.value) and "pw@" not in str(info.value)
    finally:
        httpedge.set_scrubber(str)
