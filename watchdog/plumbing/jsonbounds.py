"""Bounded JSON for the HTTP edge: a depth limit judged before parsing, large bodies
parsed off the event loop. :mod:`watchdog.plumbing.httpedge` re-exports these names, so
callers keep saying ``httpedge.parse_json``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson

INLINE_JSON = 64 << 10
"""JSON bodies up to this size are parsed on the event loop; larger ones in a thread."""

MAX_DEPTH = 64
"""Deepest JSON nesting accepted (Prometheus, Loki, Sentry answers need fewer than 8)."""


class BadJson(ValueError):
    """A body that is not JSON, or nested deeper than allowed."""


async def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON body; :class:`BadJson` (a ValueError) when malformed or too deep.

    Bodies larger than :data:`INLINE_JSON` are parsed in a worker thread.
    """
    if len(body) <= INLINE_JSON:
        return loads(body, max_depth)
    return await asyncio.to_thread(loads, body, max_depth)


def loads(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the depth limit; :class:`BadJson` names the problem."""
    if too_deep(body, max_depth):
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    try:
        # orjson decodes Prometheus' 10,000-series answers in a third of json's time (13 %
        # of the process at 10,000 windows, bench/scale.py); what it refuses and json
        # accepts (NaN, integers past 64 bits, lone surrogates) json still decides
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise BadJson(f"not JSON: {str(exc)[:120]}") from None


_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def too_deep(body: bytes, limit: int) -> bool:
    """Whether brackets nest deeper than ``limit``, judged at C speed (no regex).

    Innermost ``[]``/``{}`` pairs are removed once per level; brackets inside strings
    can unbalance the skeleton, which then stops shrinking and is left to the parser
    (whose recursion limit is the backstop).
    """
    skeleton = body.translate(None, _BRACKETS)
    if len(skeleton) <= 2 * limit:
        return False
    for _ in range(limit):
        before = len(skeleton)
        skeleton = skeleton.replace(b"[]", b"").replace(b"{}", b"")
        if not skeleton or len(skeleton) == before:
            return False
    return bool(skeleton)
