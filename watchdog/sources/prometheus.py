"""The ``prometheus`` source: instant PromQL queries on the event loop.

Each query is one GET through the app's shared httpx client (:mod:`promhttp`), at most
``concurrency`` at a time, under a hard time budget: a slow Prometheus costs a tick at
most ``timeout`` seconds, waiting for a turn included. Failed attempts (transport
errors, 502/503/504) are retried with a short backoff, each attempt's own timeout sized
so that all of them fit the budget. A big answer is parsed in a worker thread; the
bounded parser (:mod:`promparse`) caps its size and its series. It replaced a thread
pool around prometheus-api-client (:mod:`prometheus_threads`, kept for ``watchdog
replay``), which took 83 % of a core at 1,000 windows (bench/scale.py).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import httpx

from watchdog.foundation.errors import PermanentError, TransientError, WatchdogError
from watchdog.foundation.model import Sample, SampleKind
from watchdog.plumbing import httpedge
from watchdog.rulefile.judge import JudgeRule
from watchdog.rulefile.schema import PrometheusRule
from watchdog.rulefile.template import promql_escape, render
from watchdog.sources import promhttp
from watchdog.sources.base import History, Parts, Replay, SampleContext, SourceKind, always, promql
from watchdog.sources.promhttp import attempt_timeout, backoff_before
from watchdog.sources.promparse import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SERIES,
    MALFORMED,
    ResponseTooLarge,
    instant_elements,
    parse_instant,
    parse_range,
    too_many_series,
    too_many_series_in,
)
from watchdog.sources.promparse import RangeSeries as RangeSeries
from watchdog.sources.scrape_interval import ScrapeIntervals
from watchdog.sources.shared import SharedAnswers, series_for
from watchdog.sources.window_range import clamp_ranges

if TYPE_CHECKING:
    from watchdog.settings import Settings

# Answers larger than this are decoded in a worker thread: the hop costs more than
# decoding a small answer, a large one would stall every other window's evaluation.
OFF_LOOP_BYTES = 256 << 10
READY_MAX_BYTES = 64 << 10


class PrometheusSampling:
    """Rule rendering, ``job`` checks and ``shared_by`` over an ``_instant`` query."""

    intervals: ScrapeIntervals
    _shared: SharedAnswers

    async def sample(self, rule: PrometheusRule | JudgeRule, ctx: SampleContext) -> Sample:
        """Run the rule's query at ``ctx.at``; never raises.

        A live sample's ranges reach back no further than the window's opening
        (:mod:`watchdog.sources.window_range`), or, confirming a rollback, than the
        restored version's first scrape: until one scrape interval has passed since
        the rollback there is no sample of it, and the answer is no data.
        """
        try:
            query = render(rule.query, ctx.variables, promql_escape)
            scrape_job = rule.job if isinstance(rule, PrometheusRule) else None
            job = render(scrape_job, ctx.variables, promql_escape) if scrape_job else None
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        if ctx.since is not None:
            grid = await self.intervals.grid(job)
            since = ctx.since + grid if ctx.restored else ctx.since
            if ctx.at < since:
                return Sample.no_data(
                    f"waiting for the restored version's first scrape (every {grid:g}s)"
                )
            query = clamp_ranges(query, ctx.at - since, grid, shared=bool(rule.shared_by))
        if job is not None:
            down = await self._scrape_down(job, ctx)
            if down is not None:
                return down
        if rule.shared_by is None:
            return await self._instant(query, ctx.at)
        service = ctx.variables.get("service", "")
        if not ctx.live:  # baselines look back once per window: only live samples share
            return series_for(await self._instant(query, ctx.at), rule.shared_by, service)
        fetch = partial(self._vector, query, ctx.at)  # series built for the windows asking
        reuse = min(await self.intervals.grid(job), rule.effective_interval)  # see shared.py
        return await self._shared.series(query, ctx.at, fetch, rule.shared_by, service, reuse)

    async def instant(self, query: str, at: float) -> Sample:
        """One instant query outside any rule (the selector checks); never raises."""
        return await self._instant(query, at)

    async def _scrape_down(self, job: str, ctx: SampleContext) -> Sample | None:
        """A failed sample when the job has no target up (one query shared by its rules)."""
        query = f'max(up{{job="{job}"}})'
        fetch = partial(self._instant, query, ctx.at)
        answer = await (self._shared.get(query, ctx.at, fetch) if ctx.live else fetch())
        if answer.kind is SampleKind.ERROR:
            return answer
        if answer.kind is SampleKind.VALUES and answer.series[0].value >= 1:
            return None
        why = "every target is down (up == 0)" if answer.series else "Prometheus has no target"
        return Sample.failed(f"scrape job {job}: {why}", unreachable=f"Prometheus job {job}")

    async def _instant(self, query: str, at: float) -> Sample:
        raise NotImplementedError

    async def _vector(self, query: str, at: float) -> Sample | tuple[Any, ...]:
        """An instant vector's elements (``promparse.compact``), or any other answer's Sample."""
        return await self._instant(query, at)

    async def _targets(self) -> Any:
        """``GET /api/v1/targets?state=active``, decoded (raises WatchdogError)."""
        raise NotImplementedError


class PrometheusSource(PrometheusSampling):
    """Samples :class:`PrometheusRule` queries from one Prometheus server.

    ``client`` is the app's shared httpx client (its transport is the tests' seam);
    without one the source makes and closes its own.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retries: int,
        concurrency: int,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        grid: float = 15.0,
        max_series: int = DEFAULT_MAX_SERIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if timeout <= 0 or retries < 0 or concurrency < 1 or grid <= 0:
            raise ValueError("timeout and grid must be > 0, retries >= 0, concurrency >= 1")
        self._url = url.rstrip("/")
        self._timeout, self._retries = timeout, retries
        self._attempt = attempt_timeout(timeout, retries)
        self._token = token
        self._max_series, self._max_bytes = max_series, max_bytes
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        # basic auth from settings, never user:key@ in the URL
        self._auth = httpx.BasicAuth(*basic) if basic is not None else None
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._turns = asyncio.Semaphore(concurrency)
        self._shared = SharedAnswers()
        # The grid ranges round up to: Prometheus' own scrape intervals, `grid` until
        # it answers (watchdog/sources/scrape_interval.py).
        self.intervals = ScrapeIntervals(self._targets, fallback=grid)

    async def _instant(self, query: str, at: float) -> Sample:
        return cast(Sample, await self._query(query, at, raw=False))

    async def _vector(self, query: str, at: float) -> Sample | tuple[Any, ...]:
        return await self._query(query, at, raw=True)

    async def _query(self, query: str, at: float, *, raw: bool) -> Sample | tuple[Any, ...]:
        params = {"query": query, "time": repr(at), "timeout": f"{self._attempt:.3f}"}
        try:
            answer = await self._fetch("/api/v1/query", params, self._max_bytes)
            if len(answer.body) > OFF_LOOP_BYTES:
                return await asyncio.to_thread(self._parse_instant, answer, raw)
            return self._parse_instant(answer, raw)
        except WatchdogError as exc:
            return Sample.failed(self._scrub(str(exc)), transient=exc.transient)

    def _parse_instant(self, answer: promhttp.Answer, raw: bool) -> Sample | tuple[Any, ...]:
        """Count the series, then decode and build them (in a worker thread when big);
        ``raw``: an instant vector's elements, not yet series (a shared answer's)."""
        if (too_many := too_many_series_in(answer.body, self._max_series)) is not None:
            return Sample.failed(too_many, transient=False)
        parse = instant_elements if raw else parse_instant
        return parse(promhttp.decoded(answer), self._max_series)

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` over ``[start, end]``; raises Transient/PermanentError."""
        params = {
            "query": query,
            "start": repr(start),
            "end": repr(end),
            "step": repr(step),
            "timeout": f"{self._attempt:.3f}",
        }
        try:
            answer = await self._fetch("/api/v1/query_range", params, self._max_bytes)
        except WatchdogError as exc:
            raise type(exc)(self._scrub(str(exc))) from None
        if len(answer.body) > OFF_LOOP_BYTES:
            return await asyncio.to_thread(self._parse_range, answer)
        return self._parse_range(answer)

    def _parse_range(self, answer: promhttp.Answer) -> list[RangeSeries]:
        if (too_many := too_many_series_in(answer.body, self._max_series)) is not None:
            raise PermanentError(too_many)
        result = promhttp.decoded(answer)
        if (too_many := too_many_series(result, self._max_series)) is not None:
            raise PermanentError(too_many)
        try:
            return parse_range(result)
        except (KeyError, TypeError, ValueError, IndexError):
            raise TransientError(MALFORMED) from None

    async def _targets(self) -> Any:
        """``GET /api/v1/targets?state=active``, decoded (raises WatchdogError)."""
        answer = await self._fetch("/api/v1/targets", {"state": "active"}, self._max_bytes)
        if answer.status != 200:
            raise TransientError(f"Prometheus answered HTTP {answer.status} for targets")
        try:
            return await httpedge.parse_json(answer.body)
        except ValueError:
            raise TransientError(MALFORMED) from None

    async def ready(self) -> bool:
        """True when Prometheus answers ``GET /-/ready`` with 200."""
        try:
            answer = await self._fetch("/-/ready", {}, READY_MAX_BYTES)
        except WatchdogError:
            return False
        return answer.status == 200

    async def close(self) -> None:
        """Close the HTTP client if this source made it."""
        if self._owned:
            await self._client.aclose()

    async def _fetch(self, path: str, params: dict[str, str], limit: int) -> promhttp.Answer:
        """One answer within the time budget, retried; raises Transient/PermanentError."""
        try:
            async with asyncio.timeout(self._timeout), self._turns:
                return await self._attempts(self._url + path, params, limit)
        except TimeoutError:
            raise TransientError(f"Prometheus did not answer within {self._timeout:g}s") from None

    async def _attempts(self, url: str, params: dict[str, str], limit: int) -> promhttp.Answer:
        last = self._retries
        for attempt in range(last + 1):
            if attempt >= 2:
                await asyncio.sleep(backoff_before(attempt))
            try:
                answer = await promhttp.get(
                    self._client,
                    url,
                    params=params,
                    headers=self._headers,
                    attempt=self._attempt,
                    max_bytes=limit,
                    auth=self._auth,
                )
            except ResponseTooLarge:
                raise  # asking again returns the same answer
            except TransientError:
                if attempt == last:
                    raise
                continue
            if answer.status not in promhttp.RETRY_STATUS or attempt == last:
                return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _scrub(self, text: str) -> str:
        """Never let a token, password or URL credential reach a message."""
        text = text.replace(self._token, "***") if self._token else text
        return httpedge.scrubbed(text)


def basic_auth(s: Settings) -> tuple[str, str] | None:
    """Prometheus' basic auth credentials, when set."""
    if s.prometheus_username is None or s.prometheus_password is None:
        return None
    return s.prometheus_username, s.prometheus_password.get_secret_value()


def _token(s: Settings) -> str | None:
    return s.prometheus_token.get_secret_value() if s.prometheus_token else None


def _build(p: Parts) -> PrometheusSource:
    s = p.settings
    return PrometheusSource(
        s.prometheus_url, timeout=s.prometheus_timeout, retries=s.prometheus_retries,
        concurrency=s.prometheus_concurrency, token=_token(s), basic=basic_auth(s),
        grid=s.prometheus_scrape_interval, max_series=s.prometheus_max_series,
        max_bytes=s.prometheus_max_response_bytes, client=p.client,
    )  # fmt: skip


def history(s: Settings, timeout: float) -> History:
    """Range queries for ``watchdog replay``: prometheus-api-client's synchronous API."""
    from watchdog.sources.prometheus_threads import ThreadedPrometheusSource

    token = _token(s)
    return ThreadedPrometheusSource(
        s.prometheus_url, timeout=timeout, retries=1, concurrency=2, token=token
    )


HISTORY = Replay("prometheus", "WATCHDOG_PROMETHEUS_URL", None, history)
KIND = SourceKind(
    name="prometheus", rule=PrometheusRule, build=_build, unconfigured=always,
    blind=lambda rule: "Prometheus", replay=HISTORY,
    graph=promql, title="Prometheus",
)  # fmt: skip
