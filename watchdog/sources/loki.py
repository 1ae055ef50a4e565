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

from typing import TYPE_CHECKING, Any

import httpx

from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Sample
from watchdog.plumbing import httpedge
from watchdog.rulefile.telemetry import LokiRule
from watchdog.rulefile.template import promql_escape, render
from watchdog.sources.base import Parts, Replay, SampleContext, SourceKind, needs
from watchdog.sources.promparse import RangeSeries, parse_instant, parse_range
from watchdog.sources.window_range import clamp_ranges

if TYPE_CHECKING:
    from watchdog.settings import Settings

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
            answer = await httpedge.fetch(
                self._client, "GET", f"{self._url}/ready", what="Loki",
                timeout=self._timeout, max_bytes=1024, keep_head=True,
            )  # fmt: skip
        except (TransientError, PermanentError):
            return False
        return answer.status == 200

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        answer = await httpedge.fetch(
            self._client, "GET", self._url + path, what="Loki", timeout=self._timeout,
            max_bytes=self._max_bytes, params=params, headers=self._headers, auth=self._auth,
        )  # fmt: skip
        if answer.status != 200:
            message = f"Loki answered HTTP {answer.status}: {answer.excerpt()}"
            # 400: the query itself is wrong (parse error); retrying will not help.
            if httpedge.classify(answer.status) == "transient":
                raise TransientError(message, retry_after=httpedge.retry_after(answer))
            raise PermanentError(message)
        try:
            envelope = await httpedge.parse_json(answer.body)
            data = envelope["data"]
        except ValueError as exc:
            raise TransientError(f"malformed response from Loki ({exc})") from None
        except (KeyError, TypeError):
            raise TransientError("malformed response from Loki") from None
        if not isinstance(data, dict):
            raise TransientError("malformed response from Loki")
        return self._bounded(data)

    def _bounded(self, data: dict[str, Any]) -> dict[str, Any]:
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


def from_settings(s: Settings, client: httpx.AsyncClient | None = None) -> LokiSource | None:
    """The Loki source with its tenant and credentials, None without ``loki_url``."""
    if not s.loki_url:
        return None
    basic = None
    if s.loki_username and s.loki_password:
        basic = (s.loki_username, s.loki_password.get_secret_value())
    token = s.loki_token.get_secret_value() if s.loki_token else None
    return LokiSource(
        s.loki_url, timeout=s.loki_timeout, tenant=s.loki_tenant, token=token, basic=basic,
        client=client,
    )  # fmt: skip


def _build(p: Parts) -> LokiSource | None:
    return from_settings(p.settings, p.client)


KIND = SourceKind(
    name="loki", rule=LokiRule, build=_build,
    unconfigured=lambda rule, s: needs(rule, bool(s.loki_url), "WATCHDOG_LOKI_URL"),
    blind=lambda rule: "Loki",
    # log lines are continuous: ranges clamp to whole seconds
    replay=Replay("loki", "WATCHDOG_LOKI_URL", 1.0, lambda s, timeout: from_settings(s)),
    graph=None, title="Loki",
)  # fmt: skip
