"""The one HTTP edge: every outbound request of the watchdog goes through :func:`fetch`.

Sources (Sentry, Loki, scrape, http probes, version reads), channels (Slack, webhooks,
PagerDuty), markers (Grafana, Sentry) and executors (http, Render) call it with the
app's shared ``httpx.AsyncClient``, so the test transport sees every request and every
answer is judged one way:

* **Bounded after decoding.** The body is read raw and inflated here, ``max_length`` at
  a time, so reading stops at the cap on *decoded* bytes: a 512 MiB gzip bomb (0.5 MB
  on the wire) costs the cap, not 512 MiB, and no single step inflates more than the
  room left. Only ``gzip``/``deflate`` are asked for; anything else is refused.
* **Error bodies are not read**: a non-2xx answer keeps its first :data:`ERROR_HEAD`
  bytes for the message, so a 50 MiB error page is neither held nor parsed.
* **One deadline** for the whole exchange (connect, headers and body), and redirects
  are never followed (a 3xx is just a status: headers never go to a host nobody allowed).
* **One classifier**: 408, 425, 429 and 5xx are transient (429 and 503 with their
  ``Retry-After``), every other non-2xx is permanent (:func:`judge`).
* **JSON** beyond :data:`INLINE_JSON` bytes is parsed in a worker thread and nesting
  deeper than :data:`MAX_DEPTH` is refused before parsing (:func:`parse_json`).
* **Excerpts are scrubbed**: upstream error text quoted in an error has every
  configured secret and URL credential masked (:func:`set_scrubber`), since such
  errors reach the journal, the status page, Slack and webhooks, not only the logs.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.plumbing import outbound
from watchdog.plumbing.jsonbounds import INLINE_JSON as INLINE_JSON
from watchdog.plumbing.jsonbounds import MAX_DEPTH as MAX_DEPTH
from watchdog.plumbing.jsonbounds import BadJson as BadJson
from watchdog.plumbing.jsonbounds import loads as loads
from watchdog.plumbing.jsonbounds import parse_json as parse_json
from watchdog.plumbing.jsonbounds import too_deep as too_deep

ERROR_HEAD = 4096
"""Bytes of a non-2xx answer read for its error message."""

STEP = 1 << 20
"""Decoded bytes inflated between two turns of the event loop."""

EXCERPT = 300
"""Characters of an upstream answer quoted in an error."""

ACCEPT_ENCODING = "gzip, deflate"
TRANSIENT_STATUSES = frozenset({408, 425, 429})

_scrub: Callable[[str], str] = str


def set_scrubber(scrub: Callable[[str], str]) -> None:
    """Install what masks secrets in quoted upstream text (the app's configured secrets)."""
    global _scrub
    _scrub = scrub


def scrubbed(text: str) -> str:
    """``text`` with every configured secret masked."""
    return _scrub(text)


class TooLarge(PermanentError):
    """The decoded answer is larger than the caller's cap."""

    def __init__(self, message: str, *, declared: int | None = None) -> None:
        super().__init__(message)
        self.declared = declared  # the Content-Length that gave it away before reading


@dataclass(frozen=True)
class Answer:
    """A response whose (decoded, bounded) body has been read and the connection freed."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False  # the body went on past the cap (only with ``keep_head``)

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body as text (invalid UTF-8 replaced)."""
        return self.body.decode("utf-8", "replace")

    def excerpt(self, limit: int = EXCERPT) -> str:
        """The body on one line, at most ``limit`` characters, secrets masked."""
        flat = " ".join(self.body[: limit * 4].decode("utf-8", "replace").split())
        cut = flat[:limit] + ("…" if len(flat) > limit else "")
        return _scrub(cut)


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    timeout: float,  # noqa: ASYNC109 - the deadline is the edge's to own, for every caller
    max_bytes: int,
    keep_head: bool = False,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    json_body: Any = None,
    auth: httpx.Auth | None = None,
) -> Answer:
    """Send one request and read its answer within ``timeout`` seconds, all told.

    A 2xx body larger than ``max_bytes`` (decoded) raises :class:`TooLarge`, or with
    ``keep_head`` comes back cut at the cap with ``truncated`` set. Transport failures
    and the deadline raise :class:`TransientError` naming ``what``; statuses are the
    caller's to judge (:func:`judge`).
    """
    request = outbound.build(
        client, method, url, timeout=timeout, params=params, headers=headers,
        content=content, json=json_body,
    )  # fmt: skip
    request.headers["Accept-Encoding"] = ACCEPT_ENCODING
    if auth is not None:
        request = next(auth.sync_auth_flow(request))
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(client, request, what, max_bytes, keep_head)
    except (TimeoutError, httpx.TimeoutException):
        raise TransientError(f"{what}: timed out after {timeout:g}s") from None
    except httpx.ConnectError as exc:
        # the port stays in the message: "which of my three Lokis?" is the next question
        where, problem = host_port(request.url), connect_problem(exc)
        raise TransientError(f"cannot connect to {what} at {where}: {problem}") from None
    except httpx.HTTPError as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {_scrub(str(exc))[:200]}") from None


def host_port(url: httpx.URL) -> str:
    """``host:port`` of ``url`` (never its credentials), as people need it in an error."""
    return url.host if url.port is None else f"{url.host}:{url.port}"


async def _exchange(
    client: httpx.AsyncClient, request: httpx.Request, what: str, cap: int, keep_head: bool
) -> Answer:
    response = await outbound.send(client, request)  # httpx's send, less what we never use
    try:
        ok = 200 <= response.status_code < 300
        declared = response.headers.get("Content-Length", "")
        # refused unread: a compressed body over the cap decompresses to more still
        if ok and not keep_head and declared.isdigit() and int(declared) > cap:
            raise TooLarge(f"{what}: answer exceeds {cap} bytes", declared=int(declared))
        limit = cap if ok else min(cap, ERROR_HEAD)
        body, over = await read_bounded(response, limit, what)
    finally:
        await response.aclose()
    if over and ok and not keep_head:
        raise TooLarge(f"{what}: answer exceeds {cap} bytes (decoded)")
    return Answer(response.status_code, response.headers, body, truncated=over)


async def read_bounded(response: httpx.Response, cap: int, what: str) -> tuple[bytes, bool]:
    """At most ``cap`` decoded bytes of the body, and whether there was more.

    Inflating goes :data:`STEP` bytes at a time with the loop let run in between, so a
    bomb's wire chunk (64 KiB can hold 64 MiB) never blocks the loop for long.
    """
    if response.is_stream_consumed:  # built in memory (a mock transport): already decoded
        return response.content[:cap], len(response.content) > cap
    decoder = _decoder(response.headers.get("Content-Encoding", ""), what)
    buf = bytearray()
    async for raw in response.aiter_raw():
        data = raw
        while data or decoder.pending:
            try:
                buf += decoder.feed(data, min(STEP, cap + 1 - len(buf)))
            except zlib.error:
                raise TransientError(f"{what}: the compressed answer is corrupt") from None
            data = b""
            if len(buf) > cap:
                return bytes(buf[:cap]), True
            if decoder.pending:
                await asyncio.sleep(0)
    return bytes(buf), False


class _Identity:
    pending = False

    def feed(self, raw: bytes, room: int) -> bytes:
        return raw


class _Inflate:
    """gzip (several members too) or zlib-wrapped deflate, at most ``room`` bytes a call;
    input not inflated yet waits in ``unconsumed_tail``, never inflated ahead."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected

    @property
    def pending(self) -> bool:
        return bool(self._z.unconsumed_tail) or (self._z.eof and bool(self._z.unused_data))

    def feed(self, raw: bytes, room: int) -> bytes:
        if self._z.eof and self._z.unused_data:  # the next gzip member
            raw, self._z = self._z.unused_data + raw, zlib.decompressobj(32 + zlib.MAX_WBITS)
        return self._z.decompress(self._z.unconsumed_tail + raw, max(room, 1))


def _decoder(encoding: str, what: str) -> _Identity | _Inflate:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return _Identity()
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise PermanentError(f"{what}: unsupported Content-Encoding {coding[:40]!r}")
    return _Inflate()


def classify(status: int) -> str:
    """``ok`` (2xx), ``transient`` (408, 425, 429, 5xx) or ``permanent`` (the rest)."""
    if 200 <= status < 300:
        return "ok"
    if status in TRANSIENT_STATUSES or status >= 500:
        return "transient"
    return "permanent"


def judge(answer: Answer, what: str, *, now: float | None = None) -> None:
    """Raise the error a non-2xx status stands for, quoting the (scrubbed) body."""
    kind = classify(answer.status)
    if kind == "ok":
        return
    detail = f"{what}: HTTP {answer.status}"
    if 300 <= answer.status < 400:
        detail += " (redirects are not followed)"
    elif excerpt := answer.excerpt():
        detail += f": {excerpt}"
    if kind == "transient":
        raise TransientError(detail, retry_after=retry_after(answer, now))
    raise PermanentError(detail)


def retry_after(answer: Answer, now: float | None = None) -> float | None:
    """The answer's ``Retry-After`` in seconds (None when absent or unreadable)."""
    headers = answer.headers
    return parse_retry_after(
        headers.get("Retry-After"), headers.get("Date"), time.time() if now is None else now
    )


def parse_retry_after(value: str | None, date: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    An HTTP-date is measured against the response's own ``Date`` header when present
    (so clock skew between us and the server does not matter), else against ``now``.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return None
    base = _http_date(date) if date else None
    return max(0.0, when - (base if base is not None else now))


def _http_date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def connect_problem(exc: httpx.ConnectError) -> str:
    """Say "connection refused" when that is what happened, else the error."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {_scrub(str(exc))[:200]}"


def safe_url(url: str | httpx.URL) -> str:
    """Scheme, host and path only: query strings and userinfo may hold credentials."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))
