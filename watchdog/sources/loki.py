"""The ``loki`` source: LogQL metric queries against Grafana Loki's HTTP API.

``GET /loki/api/v1/query`` (instant) and ``/loki/api/v1/query_range`` (replay) answer
in Prometheus' result format, so the answers are read by the Prometheus source's
parsers. Like Prometheus rules, a live query's ``[range]`` is clamped to the window's
age (no log line from before the deploy judges it). Multi-tenant Loki gets its tenant in
``X-Scope-OrgID``; a bearer token or basic auth comes from settings. Every failure of
Loki (refused, timeout, HTTP error, a body past ``max_bytes``) is a failed sample, which
rules read as inconclusive by default: Loki down is never a rollback.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from watchdog.errors import PermanentError, TransientError
from watchdog.model import Sample
from watchdog.rulefile.telemetry import LokiRule
from watchdog.rulefile.template import promql_escape, render
from watchdog.sources.base import SampleContext
from watchdog.sources.promparse import RangeSeries, parse_instant, parse_range
from watchdog.sources.window_range import clamp_ranges

MAX_BYTES = 8 << 20
MAX_SERIES = 10_000
STREAMS = (
    'query returned log lines; use a metric query, e.g. sum(count_over_time({...} |= "x" [1m]))'
)
GRID = 1.0  # log lines are continuous: clamped ranges round up to whole seconds


class LokiSource:
    """Samples :class:`LokiRule` queries from one Loki."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        tenant: str | None = None,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        max_bytes: int = MAX_BYTES,
        max_series: int = MAX_SERIES,
    ) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout
        self._max_bytes, self._max_series = max_bytes, max_series
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._owned = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._headers = headers
        self._auth = httpx.BasicAuth(*basic) if basic else None

    async def sample(self, rule: LokiRule, ctx: SampleContext) -> Sample:
        """Run the rule's LogQL query at ``ctx.at``; never raises."""
        try:
            query = render(rule.query, ctx.variables, promql_escape)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        if ctx.since is not None:
            query = clamp_ranges(query, ctx.at - ctx.since, GRID)
        params = {"query": query, "time": _ns(ctx.at)}
        try:
            data = await self._get("/loki/api/v1/query", params)
        except (TransientError, PermanentError) as exc:
            return Sample.failed(str(exc), transient=exc.transient)
        if data.get("resultType") == "streams":
            return Sample.failed(STREAMS, transient=False)
        return parse_instant(data.get("result"))

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` over ``[start, end]`` (replay); raises Transient/PermanentError."""
        params = {"query": query, "start": _ns(start), "end": _ns(end), "step": f"{step:g}s"}
        data = await self._get("/loki/api/v1/query_range", params)
        try:
            return parse_range(data.get("result"))
        except (KeyError, TypeError, ValueError, IndexError):
            raise TransientError("malformed response from Loki") from None

    async def ready(self) -> bool:
        """True when Loki answers ``GET /ready`` with 200."""
        try:
            resp = await self._client.get(f"{self._url}/ready", timeout=self._timeout)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout):
                body, status = await self._read(path, params)
        except TimeoutError:
            raise TransientError(f"Loki did not answer within {self._timeout:g}s") from None
        except httpx.ConnectError:
            raise TransientError(f"cannot connect to Loki at {_where(self._url)}") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"request to Loki failed: {type(exc).__name__}") from None
        return self._decode(body, status)

    async def _read(self, path: str, params: dict[str, str]) -> tuple[bytes, int]:
        request = self._client.build_request(
            "GET", self._url + path, params=params, headers=self._headers
        )
        if self._auth is not None:
            request = next(self._auth.auth_flow(request))
        resp = await self._client.send(request, stream=True)
        try:
            chunks, size = [], 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise PermanentError(f"Loki's answer exceeds {self._max_bytes} bytes")
                chunks.append(chunk)
        finally:
            await resp.aclose()
        return b"".join(chunks), resp.status_code

    def _decode(self, body: bytes, status: int) -> dict[str, Any]:
        text = body[:300].decode("utf-8", errors="replace").strip()
        if status != 200:
            message = f"Loki answered HTTP {status}: {text}"
            # 400: the query itself is wrong (parse error); retrying will not help.
            transient = status in (408, 429) or status >= 500
            raise TransientError(message) if transient else PermanentError(message)
        try:
            envelope = json.loads(body)
            data = envelope["data"]
        except (ValueError, KeyError, TypeError):
            raise TransientError("malformed response from Loki") from None
        if not isinstance(data, dict):
            raise TransientError("malformed response from Loki")
        result = data.get("result")
        if isinstance(result, list) and len(result) > self._max_series:
            raise PermanentError(
                f"Loki returned {len(result)} series (more than {self._max_series}); "
                "aggregate with sum() or sum by (...)"
            )
        return data


def _ns(seconds: float) -> str:
    """Loki's timestamps: integer nanoseconds since the epoch."""
    return str(round(seconds * 1e9))


def _where(url: str) -> str:
    """``host:port`` of ``url`` (no credentials), as people need it in an error."""
    parsed = httpx.URL(url)
    return parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
