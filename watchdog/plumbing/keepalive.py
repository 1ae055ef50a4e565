"""A lean HTTP/1.1 keep-alive transport for httpx, for the origins queried all the time.

httpx's default transport (httpcore over anyio) costs ~0.9 ms of CPU per request on
this machine: with 1,000 windows each querying Prometheus that alone is most of a core
(bench/scale.py). :class:`KeepAliveTransport` speaks plain HTTP/1.1 over asyncio
streams (TLS for ``https``) with a pool of idle connections per origin, and hands
every other origin to the ``fallback`` transport (httpx's own). It sits *under* the
app's shared client, so requests still pass through :mod:`watchdog.plumbing.httpedge` and tests
still replace the whole transport.

What it does not do, on purpose: HTTP/2, proxies (httpx routes proxied origins to its
own transports before this one), ``Expect: 100-continue``, upgrades. A reused idle
connection that the server closed meanwhile is noticed before use; one that closes
without answering a GET is retried once on a fresh connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable

import httpx

MAX_HEAD = 64 << 10  # status line and headers
MAX_IDLE = 64  # idle connections kept per origin
READ = 64 << 10
NO_BODY = frozenset({204, 304})
Origin = tuple[str, str, int]


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        self.writer.close()


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive for ``origins`` (``scheme://host:port``), ``fallback`` for the rest."""

    def __init__(self, origins: Iterable[str], fallback: httpx.AsyncBaseTransport) -> None:
        self._origins = {_origin(httpx.URL(o)) for o in origins}
        self._fallback = fallback
        self._idle: dict[Origin, list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the answer's body streams from the connection."""
        origin = _origin(request.url)
        if origin not in self._origins:
            return await self._fallback.handle_async_request(request)
        head = _head(request, await request.aread())
        conn, reused = await self._connection(origin, request)
        try:
            return await self._exchange(conn, origin, head)
        except _ClosedIdle:
            if not reused or request.method not in ("GET", "HEAD"):
                raise httpx.RemoteProtocolError("server closed the connection") from None
        conn = await self._open(origin, request)  # the idle one was stale: once more
        return await self._exchange(conn, origin, head)

    async def aclose(self) -> None:
        """Close every idle connection, and the fallback."""
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        await self._fallback.aclose()

    async def _connection(self, origin: Origin, request: httpx.Request) -> tuple[_Conn, bool]:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        return await self._open(origin, request), False

    async def _open(self, origin: Origin, request: httpx.Request) -> _Conn:
        scheme, host, port = origin
        timeout = request.extensions.get("timeout", {}).get("connect")
        context = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, limit=MAX_HEAD
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Conn(reader, writer)

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _exchange(self, conn: _Conn, origin: Origin, head: bytes) -> httpx.Response:
        try:
            conn.writer.write(head)
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            conn.close()
            if not exc.partial:
                raise _ClosedIdle from None
            raise httpx.RemoteProtocolError("incomplete response head") from None
        except asyncio.LimitOverrunError:
            conn.close()
            raise httpx.RemoteProtocolError(f"response head over {MAX_HEAD} bytes") from None
        except OSError as exc:
            conn.close()
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        status, headers = _parse_head(raw)
        body = _Body(self, conn, origin, status, headers)
        return httpx.Response(status, headers=headers, stream=body)

    def _release(self, origin: Origin, conn: _Conn) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < MAX_IDLE and conn.usable():
            idle.append(conn)
        else:
            conn.close()


class _ClosedIdle(Exception):
    """The connection closed before any byte of the answer."""


class _Body(httpx.AsyncByteStream):
    """The answer's body, raw (content codings are the reader's to undo)."""

    def __init__(
        self,
        owner: KeepAliveTransport,
        conn: _Conn,
        origin: Origin,
        status: int,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self._owner, self._conn, self._origin = owner, conn, origin
        fields = {k.lower(): v for k, v in headers}
        self._chunked = b"chunked" in fields.get(b"transfer-encoding", b"").lower()
        length = fields.get(b"content-length")
        self._length = int(length) if length is not None and length.isdigit() else None
        if status in NO_BODY or 100 <= status < 200:
            self._length, self._chunked = 0, False
        self._reusable = fields.get(b"connection", b"").lower() != b"close"
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._conn.reader
        try:
            if self._chunked:
                async for piece in _chunks(reader):
                    yield piece
            elif self._length is not None:
                left = self._length
                while left:
                    piece = await reader.read(min(left, READ))
                    if not piece:
                        raise httpx.RemoteProtocolError("connection closed mid-body")
                    left -= len(piece)
                    yield piece
            else:  # delimited by the connection closing
                self._reusable = False
                while piece := await reader.read(READ):
                    yield piece
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        self._done = True

    async def aclose(self) -> None:
        """Pool the connection when the body was read whole, else close it."""
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        if self._done and self._reusable:
            self._owner._release(self._origin, conn)
        else:
            conn.close()


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        raise httpx.RemoteProtocolError("malformed chunked body") from None


def _origin(url: httpx.URL) -> Origin:
    scheme = url.scheme
    return scheme, url.host, url.port or (443 if scheme == "https" else 80)


def _head(request: httpx.Request, body: bytes) -> bytes:
    url = request.url
    target = url.raw_path  # path and query, already percent-encoded
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), target)]
    for name, value in request.headers.raw:
        if name.lower() != b"transfer-encoding":
            lines.append(name + b": " + value)
    if body and b"content-length" not in {n.lower() for n, _ in request.headers.raw}:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _parse_head(raw: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    lines = raw[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise httpx.RemoteProtocolError("malformed header line")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), headers
