"""One request built and sent for the HTTP edge without httpx's per-request machinery.

``client.build_request`` + ``client.send`` cost the edge ~100 µs of CPU a request, more
than the lean transport under it: httpx parsed the URL string again every time (~30 µs
with the query), then ran the auth flow, the redirect bookkeeping, the event hooks and
the cookie jar, none of which the edge uses (it applies ``auth`` itself and never
follows redirects). Here, for :func:`watchdog.plumbing.httpedge.fetch`:

* each URL string is parsed once (:func:`parsed`, a bounded cache) and the query is
  encoded exactly as httpx encodes it (:func:`query`), then set on the parsed URL
  without parsing it again (:func:`with_query`);
* the request goes straight to the client's transport for its URL (:func:`transport_for`:
  mounts and proxies respected), so a test's ``MockTransport`` still sees every request;
* what the edge relies on is kept: the client's headers, the ``timeout`` extension the
  transports read, credentials in the URL sent as Basic auth, ``response.request``, the
  request named by a transport error, httpx's ``HTTP Request:`` log line (at debug).

Left out on purpose: the cookie jar. An upstream's ``Set-Cookie`` is neither stored
nor sent back to it: no source needs one, and not carrying cookies from answer to
request is the safer default. Nor is ``response.elapsed`` set (nothing reads it). A
client with auth, params, cookies or event hooks of its own takes httpx's whole path
(:func:`plain`), as before; a relative URL, or one with both a query and params, is
built by httpx (``client.build_request``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

HTTPX_LOG = logging.getLogger("httpx")  # its per-request line, kept for debug logs

SENT_WITH_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # httpx adds Content-Length: 0

CHECKED_QUERY = 4096
"""Queries longer than this are set through httpx's validating ``copy_with``, which
refuses one past its URL limit (64 KiB) as it always did; shorter ones need no check."""


@functools.lru_cache(maxsize=256)
def parsed(url: str) -> httpx.URL:
    """``httpx.URL(url)``, parsed once per distinct string (URLs are immutable)."""
    return httpx.URL(url)


def query(params: Mapping[str, str]) -> str:
    """``params`` as httpx writes them into a URL (``str(httpx.QueryParams(params))``:
    the standard library's ``urlencode``, ``quote_plus`` per key and value)."""
    if type(params) is dict and all(type(k) is str and type(v) is str for k, v in params.items()):
        return urlencode(params)
    return str(httpx.QueryParams(params))  # True -> "true", None -> "": httpx's own way


def with_query(url: httpx.URL, encoded: str) -> httpx.URL:
    """``url.copy_with(query=encoded)`` without parsing and validating ``url`` again.

    ``encoded`` is :func:`query`'s output (unreserved characters, ``%XX``, ``+``, ``=``,
    ``&``), which httpx's validation keeps byte for byte; it costs 27 µs, this 1.5.
    """
    if len(encoded) > CHECKED_QUERY:
        return url.copy_with(query=encoded.encode("ascii"))
    # httpx private: URL._uri_reference, the parsed form (a NamedTuple). If httpx
    # changes it, tests/unit/test_outbound.py fails (compared with copy_with).
    out = httpx.URL(url)  # shares the parsed form: no parsing
    out._uri_reference = url._uri_reference._replace(query=encoded)
    return out


def transport_for(client: httpx.AsyncClient, url: httpx.URL) -> httpx.AsyncBaseTransport:
    """The transport ``client.send`` would use for ``url``: a mount's (proxies from
    the environment included), else the client's own."""
    # httpx private (0.2x), tested in tests/unit/test_outbound.py: no public equivalent
    return client._transport_for_url(url)


def plain(client: httpx.AsyncClient) -> bool:
    """No auth, params, cookies or event hooks of the client's own: ``client.send``
    would add nothing the edge needs beyond what :func:`send` does."""
    hooks = client.event_hooks
    return (
        client.auth is None
        and not client.params
        and not client.cookies
        and not (hooks["request"] or hooks["response"])
    )


def target(url: str | httpx.URL, params: Mapping[str, str] | None) -> httpx.URL | None:
    """The URL httpx makes of ``url`` and ``params``, or None where httpx's own way is
    taken (a relative URL; a URL with a query and params)."""
    base = parsed(url) if isinstance(url, str) else url
    if base.is_relative_url or (params is not None and b"?" in base.raw_path):
        # the client's base_url applies, or params meet a query (even an empty one):
        # merged or replaced depending on the httpx version (0.29 replaces): its way
        return None
    if params is None:
        return base
    return with_query(base, query(params)) if params else base


def build(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    timeout: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    json: Any = None,
) -> httpx.Request:
    """What ``client.build_request`` builds (with ``timeout`` for every phase), less cookies."""
    absolute = target(url, params)
    if absolute is None or not plain(client):
        return client.build_request(
            method, url, params=params, headers=headers, content=content, json=json,
            timeout=timeout,
        )  # fmt: skip
    merged = httpx.Headers(client.headers)
    if headers:
        merged.update(headers)
    extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
    if content is None and json is None and method.upper() not in SENT_WITH_LENGTH:
        return bodiless(method, absolute, merged, extensions)
    return httpx.Request(
        method, absolute, headers=merged, content=content, json=json, extensions=extensions
    )


def bodiless(
    method: str, url: httpx.URL, headers: httpx.Headers, extensions: dict[str, Any]
) -> httpx.Request:
    """``httpx.Request(method, url, headers=headers)`` for a request without a body, as
    httpx makes it (``Host`` first unless given, the empty body read) in half the time:
    no body to encode, no headers to check for its length."""
    raw = headers.raw
    if "Host" not in headers and url.host:
        raw = [(b"Host", url.netloc), *raw]
    request = httpx.Request(
        method, url, headers=raw, stream=httpx.ByteStream(b""), extensions=extensions
    )
    request.read()
    return request


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send(request, stream=True, follow_redirects=False)``, less what the edge
    never uses (see the module's docstring); the body is left to stream."""
    if not plain(client):
        return await client.send(request, stream=True, follow_redirects=False)
    if client.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    url = request.url
    if url.userinfo and (url.username or url.password):  # as httpx: URL credentials
        request = next(httpx.BasicAuth(url.username, url.password).sync_auth_flow(request))
    try:
        response = await transport_for(client, url).handle_async_request(request)
    except httpx.RequestError as exc:
        exc.request = request  # as httpx does: the error knows its request
        raise
    response.request = request
    if HTTPX_LOG.isEnabledFor(logging.INFO):
        HTTPX_LOG.info(
            'HTTP Request: %s %s "%s %d %s"', request.method, request.url,
            response.http_version, response.status_code, response.reason_phrase,
        )  # fmt: skip
    return response
