"""The ``scrape`` source: a target's ``/metrics`` read directly, no Prometheus server.

For Render and small VM stacks that run no Prometheus, and as the fastest path when a
Prometheus scrapes every minute. Each evaluation fetches the page (bounded in bytes and
series), parses it with prometheus_client's text parser off the event loop, and keeps
per-(window, rule) counter state to compute increases the way Prometheus' ``increase()``
does: a value that goes down is a reset and counts from zero; a series that appears
later counts from zero ("absent is zero"). When the target's process started after the
window opened (the new version's process, ``process_start_time_seconds``), its counters
count from zero too, so errors served before the first scrape are not lost. The
counting, and the pages it refuses to judge (two processes answering one URL, a reading
no counter can hold), is :mod:`watchdog.sources.scrape_counters`'.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

from watchdog.foundation import regex
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Sample, series_key
from watchdog.plumbing import httpedge
from watchdog.rulefile.telemetry import MetricSelector, ScrapeRule
from watchdog.rulefile.template import render, url_escape
from watchdog.sources.base import Parts, SampleContext, SourceKind, always
from watchdog.sources.counters import StartPoints
from watchdog.sources.hosts import AllowedHosts
from watchdog.sources.scrape_counters import Counters

MAX_SERIES = 50_000
ACCEPT = "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"
START_TIME = "process_start_time_seconds"

Points = list[tuple[str, dict[str, str], float]]  # (sample name, labels, value)


class ScrapeError(Exception):
    """The page could not be read or understood; ``transient`` says whether to retry."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class ScrapeSource:
    """Samples :class:`ScrapeRule` targets with one shared httpx client."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_series: int = MAX_SERIES,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)
        self._max_series = max_series
        self._allowed = AllowedHosts(allowed_hosts)  # for hosts the labels choose
        self._state: StartPoints[Counters] = StartPoints()

    async def sample(self, rule: ScrapeRule, ctx: SampleContext) -> Sample:
        """Scrape now and judge the page; never raises."""
        if not ctx.live:
            return Sample.failed("scrape reads the target now; it cannot look back in time",
                                 transient=False)  # fmt: skip
        try:
            url = render(rule.url, ctx.variables, url_escape)
            if (refused := self._allowed.refusal(rule.url, url)) is not None:
                return Sample.failed(f"scrape: {refused}", transient=False)
            rule = _bound(rule, ctx.variables)
            points = await self._scrape(url, rule)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        except ScrapeError as exc:
            # Blamed on the target as rendered (host:port), not on the rule's template.
            where = f"scrape target {_host(url)}"
            return Sample.failed(str(exc), transient=exc.transient, unreachable=where)
        if rule.value == "gauge":
            return _gauge(points, rule)
        return self._counted(points, rule, ctx)

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _scrape(self, url: str, rule: ScrapeRule) -> Points:
        what = f"scrape of {_host(url)}"
        try:
            answer = await httpedge.fetch(
                self._client, "GET", url, what=what, timeout=rule.timeout,
                max_bytes=rule.max_bytes, headers={"Accept": ACCEPT},
            )  # fmt: skip
        except httpx.InvalidURL as exc:
            raise ScrapeError(f"invalid scrape URL: {exc}", transient=False) from None
        except (TransientError, PermanentError) as exc:
            raise ScrapeError(str(exc), transient=exc.transient) from None
        if answer.status != 200:
            raise ScrapeError(f"{what} answered HTTP {answer.status}")
        text = answer.body.decode("utf-8", errors="replace")
        return await asyncio.to_thread(parse_page, text, self._max_series)

    def _counted(self, points: Points, rule: ScrapeRule, ctx: SampleContext) -> Sample:
        selectors = (
            {"errors": rule.errors, "total": rule.total}
            if rule.value == "ratio"
            else {"metric": rule.metric}
        )
        try:
            readings = {name: select(points, sel) for name, sel in selectors.items() if sel}
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        # Keyed by where the evidence starts too: after a rollback, counting starts over.
        key = (ctx.window_id, rule.name, ctx.since)
        state = self._state.get(key)
        if state is None:
            state = Counters()
            self._state.put(key, state)
        first, process = not state.started, _process(points)
        from_zero = process is not None and ctx.since is not None and process >= ctx.since
        if (why := state.fold(readings, process, from_zero=from_zero)) is not None:
            return Sample.failed(why, transient=False)  # it answered: not an outage
        if first and not from_zero:
            return Sample.no_data("start point taken; increases count from the next scrape")
        return _judge(rule, state)


def _bound(rule: ScrapeRule, variables: Mapping[str, str]) -> ScrapeRule:
    """The rule with ``{{ service }}``-style variables filled into its label matchers."""

    def fill(selector: MetricSelector | None) -> MetricSelector | None:
        if selector is None or not selector.match:
            return selector
        match = {
            name: "~" + render(v[1:], variables, re.escape)
            if v.startswith("~")
            else render(v, variables, str)
            for name, v in selector.match.items()
        }
        return selector.model_copy(update={"match": match})

    update = {k: fill(getattr(rule, k)) for k in ("metric", "errors", "total")}
    return rule.model_copy(update=update)


def _judge(rule: ScrapeRule, state: Counters) -> Sample:
    if rule.value == "increase":
        return Sample.of(state.increase.get("metric", 0.0), detail="increase since window start")
    errors, total = state.increase.get("errors", 0.0), state.increase.get("total", 0.0)
    if total <= 0:
        return Sample.no_data("no requests counted since the window opened")
    return Sample.of(errors / total, detail=f"{errors:g} of {total:g} since window start")


def _gauge(points: Points, rule: ScrapeRule) -> Sample:
    assert rule.metric is not None
    try:
        values = select(points, rule.metric)
    except PermanentError as exc:
        return Sample.failed(str(exc), transient=False)
    if not values:
        return Sample.no_data(f"no series of {rule.metric.metric} match")
    return Sample.of(sum(values.values()), detail=f"{len(values)} series")


def parse_page(text: str, max_series: int) -> Points:
    """Every sample of a Prometheus text page; ScrapeError past ``max_series``."""
    out: Points = []
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.append((s.name, dict(s.labels), float(s.value)))
                if len(out) > max_series:
                    raise ScrapeError(f"page has more than {max_series} series", transient=False)
    except ValueError as exc:
        raise ScrapeError(f"not a Prometheus metrics page: {str(exc)[:200]}") from None
    return out


def select(points: Points, selector: MetricSelector) -> dict[str, float]:
    """The selected series' values by series key (histograms: observations above a bound)."""
    if selector.slower_than is not None:
        return _slower_than(points, selector)
    return {
        series_key(labels): value
        for name, labels, value in points
        if name == selector.metric and _matches(labels, selector.match) and not math.isnan(value)
    }


def _slower_than(points: Points, selector: MetricSelector) -> dict[str, float]:
    bound = selector.slower_than
    buckets: dict[str, dict[float, float]] = {}
    for name, labels, value in points:
        if name != f"{selector.metric}_bucket" or not _matches(labels, selector.match):
            continue
        rest = {k: v for k, v in labels.items() if k != "le"}
        buckets.setdefault(series_key(rest), {})[float(labels.get("le", "nan"))] = value
    out: dict[str, float] = {}
    for key, by_le in buckets.items():
        if bound not in by_le:
            finite = ", ".join(f"{le:g}" for le in sorted(by_le) if math.isfinite(le))
            raise PermanentError(
                f"histogram {selector.metric} has no bucket le={bound:g} (buckets: {finite})"
            )
        out[key] = by_le.get(math.inf, 0.0) - by_le[bound]
    return out


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    for name, value in wanted.items():
        have = labels.get(name, "")
        ok = regex.compiled(value[1:]).fullmatch(have) if value.startswith("~") else have == value
        if not ok:
            return False
    return True


def _process(points: Iterable[tuple[str, dict[str, str], float]]) -> float | None:
    """The page's process: its (earliest) ``process_start_time_seconds``, if it has one."""
    starts = [value for name, _, value in points if name == START_TIME and value == value]
    return min(starts) if starts else None


def _host(url: str) -> str:
    """``host:port`` of ``url`` (the port kept: two targets often share a host)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "target"
    if not parsed.host:
        return url
    return parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"


def _build(p: Parts) -> ScrapeSource:
    return ScrapeSource(p.probe_client, allowed_hosts=p.settings.http_allowed_hosts)


KIND = SourceKind(
    name="scrape", rule=ScrapeRule, build=_build,
    unconfigured=always, blind=lambda rule: f"scrape target {_host(rule.url)}",
    replay=None, graph=None, title="scrape",
)  # fmt: skip
