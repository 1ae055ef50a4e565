"""A hostile upstream on loopback: whatever path is asked, the scripted bad answer.

``mode`` picks the answer for every request (any method, any path):

* ``bomb``: 200, ``Content-Encoding: gzip``, 512 MiB of zeros in ~0.5 MB on the wire;
* ``huge``: 200, a 300 MiB JSON-ish body streamed in 64 KiB pieces;
* ``error``: 500 with a 50 MiB JSON body;
* ``deep``: 200 with JSON nested 100,000 levels deep;
* ``echo``: 401 quoting the request's credential back, bare (a misbehaving proxy);
* ``hang``: headers never come (until ``release`` is set or the client leaves).

Every loop is bounded: a body stops at its size, or when the client goes away (it
stopped reading at its cap); ``sent`` counts the body bytes written per request.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass, field
from functools import cache

from aiohttp import web

from tests.fakes import serve

MIB = 1 << 20
PIECE = 64 << 10


@cache
def gzip_bomb(mib: int = 512) -> bytes:
    """A valid single-member gzip of ``mib`` MiB of zeros, built in well under a second:
    after a full flush deflate restarts, so every further MiB compresses the same."""
    zeros = bytes(MIB)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    # 0x03 0x00: an empty final block (fixed Huffman), then CRC-32 and ISIZE.
    trailer = b"\x03\x00" + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)
    return first + again * (mib - 1) + trailer


@dataclass
class HostileUpstream:
    """The server; ``sent`` holds the body bytes written for each request."""

    mode: str = "bomb"
    sent: list[int] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        gzip_bomb()  # built before any test measures memory
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        """Stop listening (a hanging request is let go first)."""
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.headers_seen.append(dict(request.headers))
        await request.read()
        if self.mode == "hang":
            await self.release.wait()
            return web.Response(status=503)
        if self.mode == "echo":
            credential = request.headers.get("Authorization", "").rpartition(" ")[2]
            detail = f"{credential} is not valid for {request.path}"
            return web.json_response({"detail": detail}, status=401, text=None)
        if self.mode == "deep":
            depth = 100_000
            return web.Response(body=b"[" * depth + b"]" * depth, content_type="application/json")
        if self.mode == "bomb":
            return await self._stream(request, 200, gzip_bomb(), {"Content-Encoding": "gzip"})
        size, status = (300 * MIB, 200) if self.mode == "huge" else (50 * MIB, 500)
        return await self._stream(request, status, None, {}, size)

    async def _stream(
        self,
        request: web.Request,
        status: int,
        body: bytes | None,
        headers: dict[str, str],
        size: int = 0,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = "application/json"
        await response.prepare(request)
        index = len(self.sent)
        self.sent.append(0)
        total = len(body) if body is not None else size
        piece = b"[" + b"0," * (PIECE // 2 - 1) + b"0"
        try:
            for start in range(0, total, PIECE):
                chunk = body[start : start + PIECE] if body is not None else piece
                await response.write(chunk)
                self.sent[index] += len(chunk)
        except (ConnectionError, RuntimeError):
            return response  # the client stopped reading and left
        await response.write_eof()
        return response
