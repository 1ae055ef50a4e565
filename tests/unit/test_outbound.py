"""The edge's own request building and sending (``plumbing/outbound.py``) against httpx's:
the same URL byte for byte, the same headers, the same transport; what is left out
(the cookie jar) is left out on purpose. The two httpx privates it leans on are pinned
here, so an httpx upgrade that changes them fails these tests, not production."""

from __future__ import annotations

import logging
import random
from typing import Any

import httpx
import pytest

from watchdog.plumbing import httpedge, outbound

BASE = "http://prom.example:9090/api/v1/query"
TRICKY = [
    'sum(rate(http_requests_total{service="api",code=~"5.."}[5m]))',
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket{path!~'/health|/ready'}[1m])))",
    'up{job="a b"} + on() group_left vector(1) / 2 * -3 > 0.5 and not  \t x',
    'count({__name__=~"café|日本語|🙂"}) # a comment',
    "100% of %41 %zz %2 %%25 &amp; a=b&c=d ? # / \\ ` ^ | ~ ' \"",
    "\n\r\x00\x7f é",
    "",
]


def same(url: str, params: Any) -> None:
    client = httpx.AsyncClient()
    ours = outbound.build(client, "GET", url, timeout=1, params=params).url
    theirs = client.build_request("GET", url, params=params).url
    assert ours.raw_path == theirs.raw_path and str(ours) == str(theirs)
    assert ours == theirs and ours.params == theirs.params


@pytest.mark.parametrize("query", TRICKY)
def test_the_query_is_encoded_byte_for_byte_as_httpx_encodes_it(query: str) -> None:
    assert outbound.target(BASE, {"query": query}) is not None  # not httpx's own way
    same(BASE, {"query": query, "time": "1765000000.123"})
    same(BASE, {query: query})


def test_random_text_is_encoded_as_httpx_encodes_it() -> None:
    rng = random.Random(23)
    alphabet = [chr(c) for c in range(32, 127)] + list("\t\n\x00éß€日🙂\u00a0\ufeff") + ["%4"]
    for _ in range(300):
        params = {
            "".join(rng.choices(alphabet, k=rng.randint(0, 8))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 60))
            )
            for _ in range(rng.randint(1, 4))
        }
        same(BASE, params)


@pytest.mark.parametrize(
    "url",
    [
        BASE + "?a=1&b=x%20y+z&c",  # params and a query: httpx's way (the version's)
        BASE + "?query=old",
        BASE + "?",  # an empty query
        BASE + "#frag",
        "https://user:p%40ss@prom.example/p/a%20th?x=%C3%A9",
        "http://[::1]:9090/api/v1/query",
        "http://PROM.Example/",
    ],
)
@pytest.mark.parametrize(
    "params", [None, {}, {"query": 'up{a="b c"}'}, {"query": "x", "n": 3, "t": True, "z": None}]
)
def test_urls_and_params_of_every_shape_make_the_url_httpx_makes(url: str, params: Any) -> None:
    same(url, params)
    same(url, params)  # the cached parse gives the same answer again
    if params is not None:
        same(url, list(dict(params).items()))


def test_a_relative_url_is_left_to_the_clients_base_url() -> None:
    assert outbound.target("/api/v1/query", {"q": "1"}) is None
    client = httpx.AsyncClient(base_url="http://prom.example/prefix/")
    request = outbound.build(client, "GET", "api/v1/query", timeout=3, params={"q": "1"})
    assert str(request.url) == "http://prom.example/prefix/api/v1/query?q=1"


def test_a_query_past_httpxs_limit_is_still_refused() -> None:
    same(BASE, {"query": "x" * (outbound.CHECKED_QUERY + 10)})
    with pytest.raises(httpx.InvalidURL, match="too long"):
        outbound.target(BASE, {"query": "x" * 70_000})


def test_httpx_private_parsed_form_still_takes_a_new_query() -> None:
    # outbound.with_query sets URL._uri_reference's query: if httpx renames or changes
    # it, this fails (and so must with_query be changed)
    url = httpx.URL("https://u:p@prom.example:9090/a%20b/c?old=1#f")
    for encoded in ["q=up%7Ba%3D%22b%22%7D&time=1.5", "a+b=%25%41&c=", ""]:
        ours = outbound.with_query(url, encoded)
        theirs = url.copy_with(query=encoded.encode("ascii"))
        assert ours.raw_path == theirs.raw_path and str(ours) == str(theirs)
        assert ours.host == theirs.host and ours.port == theirs.port and ours.fragment == "f"
    assert str(url) == "https://u:p@prom.example:9090/a%20b/c?old=1#f"  # untouched


def client_with(**kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)), **kw)


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", {}),
        ("get", {}),
        ("HEAD", {}),
        ("DELETE", {}),
        ("POST", {}),  # Content-Length: 0
        ("PUT", {"content": b"abc"}),
        ("POST", {"json": {"a": [1, "é"]}}),
        ("PATCH", {"content": b"x", "headers": {"Content-Type": "text/plain"}}),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [None, {}, {"X-Scope-OrgID": "t1", "user-agent": "me"}, {"Host": "virtual.example"}],
)
async def test_requests_are_built_as_httpx_builds_them(
    method: str, body: dict[str, Any], headers: dict[str, str] | None
) -> None:
    client = client_with(headers={"X-Team": "sre"})
    kw = {**body, "headers": {**(headers or {}), **body.get("headers", {})} or headers}
    ours = outbound.build(client, method, BASE, timeout=2.5, params={"q": "up"}, **kw)
    theirs = client.build_request(method, BASE, params={"q": "up"}, timeout=2.5, **kw)
    assert (ours.method, ours.url, ours.headers.raw) == (
        theirs.method,
        theirs.url,
        theirs.headers.raw,
    )
    assert ours.extensions == theirs.extensions == {"timeout": httpx.Timeout(2.5).as_dict()}
    assert ours.content == theirs.content and await ours.aread() == theirs.content


async def test_the_request_reaches_the_mounted_transport_for_its_url() -> None:
    seen: dict[str, list[str]] = {"mounted": [], "default": []}

    def to(name: str) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            seen[name].append(str(request.url))
            return httpx.Response(204)

        return httpx.MockTransport(answer)

    mounted = to("mounted")
    client = httpx.AsyncClient(transport=to("default"), mounts={"http://loki.example": mounted})
    assert outbound.transport_for(client, httpx.URL("http://loki.example/x")) is mounted
    for url in ("http://loki.example/x", "http://prom.example/y"):
        await httpedge.fetch(client, "GET", url, what="t", timeout=1, max_bytes=10)
    assert seen == {"mounted": ["http://loki.example/x"], "default": ["http://prom.example/y"]}


@pytest.mark.parametrize("where", ["argument", "environment"])
async def test_a_proxy_is_still_used(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    proxy = "http://proxy.example:3128"
    if where == "environment":
        monkeypatch.setenv("HTTP_PROXY", proxy)
    client = httpx.AsyncClient(proxy=proxy if where == "argument" else None)
    url = httpx.URL("http://prom.example/")
    proxied = outbound.transport_for(client, url)
    assert proxied is not client._transport and proxied in client._mounts.values()
    direct = outbound.transport_for(client, httpx.URL("https://x.example/")) is client._transport
    assert direct == (where == "environment")  # HTTP_PROXY is for http:// only


async def test_what_client_send_did_that_the_edge_relies_on_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    url = "http://us%40er:p%20w@prom.example/x"
    with caplog.at_level(logging.INFO, logger="httpx"):
        response = await outbound.send(client, outbound.build(client, "GET", url, timeout=1))
    assert response.request is seen[0]
    # credentials in the URL go as Basic auth, as httpx sends them
    assert seen[0].headers["Authorization"] == httpx.BasicAuth("us@er", "p w")._auth_header
    assert caplog.messages == [
        'HTTP Request: GET http://us%40er:p%20w@prom.example/x "HTTP/1.1 200 OK"'
    ]
    await client.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await outbound.send(client, outbound.build(client, "GET", url, timeout=1))


async def test_a_transport_error_names_its_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    request = outbound.build(client, "GET", BASE, timeout=1)
    with pytest.raises(httpx.ConnectError) as info:
        await outbound.send(client, request)
    assert info.value.request is request


async def test_cookies_an_upstream_sets_are_not_kept_nor_sent_back() -> None:
    cookies: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        cookies.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    for _ in range(2):
        await httpedge.fetch(client, "GET", BASE, what="t", timeout=1, max_bytes=10)
    assert cookies == [None, None] and not client.cookies


@pytest.mark.parametrize(
    "kw",
    [
        {"cookies": {"session": "given"}},
        {"auth": ("u", "p")},
        {"params": {"tenant": "a"}},
        {"event_hooks": {"request": [], "response": []}},  # none: still plain
    ],
)
async def test_a_client_with_its_own_settings_is_served_as_httpx_serves_it(
    kw: dict[str, Any],
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer), **kw)
    await httpedge.fetch(client, "GET", BASE, what="t", timeout=1, max_bytes=10, params={"q": "1"})
    expected = client.build_request("GET", BASE, params={"q": "1"})
    if "auth" in kw:
        expected = next(httpx.BasicAuth("u", "p").sync_auth_flow(expected))
    expected.headers["Accept-Encoding"] = httpedge.ACCEPT_ENCODING
    assert (seen[0].url, seen[0].headers.raw) == (expected.url, expected.headers.raw)
    assert outbound.plain(client) == ("event_hooks" in kw)


async def test_event_hooks_still_run() -> None:
    hooked: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        hooked.append(request.method)

    async def on_response(response: httpx.Response) -> None:
        hooked.append(str(response.status_code))

    client = client_with(event_hooks={"request": [on_request], "response": [on_response]})
    await httpedge.fetch(client, "GET", BASE, what="t", timeout=1, max_bytes=10)
    assert hooked == ["GET", "200"]
