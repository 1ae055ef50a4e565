"""The scrape source: increases, resets, absent series, histograms, bounds (httpx MockTransport)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.stack import REPO
from tests.rules import rule_model
from tests.world import app_settings
from watchdog import wiring
from watchdog.foundation.model import SampleKind
from watchdog.rulefile.telemetry import ScrapeRule
from watchdog.sources.base import SampleContext
from watchdog.sources.counters import carried, deltas
from watchdog.sources.hosts import host_from_labels
from watchdog.sources.scrape import ScrapeSource, _matches
from watchdog.store.sqlite import SqliteStore

OPENED = 1_800_000_000.0


def page(ok: float | str, errors: float | str | None, *, started: float = OPENED - 600) -> str:
    lines = [
        "# HELP http_requests_total Total requests.",
        "# TYPE http_requests_total counter",
        f'http_requests_total{{handler="/a",status="2xx"}} {ok}',
    ]
    if errors is not None:
        lines.append(f'http_requests_total{{handler="/a",status="5xx"}} {errors}')
    lines += [
        "# HELP process_start_time_seconds Start time.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {started}",
    ]
    return "\n".join(lines) + "\n"


class Target:
    """Serves the pages it is given, one per scrape; counts scrapes."""

    def __init__(self, *pages: str, status: int = 200) -> None:
        self.pages = list(pages)
        self.status = status
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = self.pages[min(len(self.requests), len(self.pages)) - 1]
        return httpx.Response(self.status, text=body)


def rule(**kw: Any) -> ScrapeRule:
    url = "http://app.internal:8000/metrics"
    errors = {"metric": "http_requests_total", "match": {"status": "~5.."}}
    return rule_model(
        ScrapeRule, kw, name="ratio", source="scrape", url=url, threshold="> 0.05",
        errors=errors, total={"metric": "http_requests_total"},
    )  # fmt: skip


async def scrape_all(target: Target, r: ScrapeRule, n: int, opened: float = OPENED) -> list[Any]:
    source = ScrapeSource(httpx.AsyncClient(transport=httpx.MockTransport(target.handler)))
    ctx = SampleContext("w1", {"service": "api"}, OPENED + 60, True, since=opened)
    try:
        return [await source.sample(r, ctx) for _ in range(n)]
    finally:
        await source.close()


async def test_the_first_scrape_is_the_start_point_and_later_ones_count_the_increase() -> None:
    target = Target(page(1000, 10), page(1100, 30), page(1200, 30))
    first, second, third = await scrape_all(target, rule(), 3)
    assert first.kind is SampleKind.NO_DATA and "start point" in (first.error or "")
    assert second.series[0].value == pytest.approx(20 / 120)  # 100 ok + 20 errors
    assert third.series[0].value == pytest.approx(20 / 220)
    assert len(target.requests) == 3
    assert target.requests[0].headers["accept"].startswith("text/plain")


async def test_an_error_series_that_appears_later_counts_from_zero() -> None:
    # Client libraries create status="5xx" only at the first error: absent is zero.
    target = Target(page(1000, None), page(1090, 10))
    _, second = await scrape_all(target, rule(), 2)
    assert second.series[0].value == pytest.approx(10 / 100)


async def test_a_healthy_page_without_error_series_reads_zero() -> None:
    _, second = await scrape_all(Target(page(1000, None), page(1100, None)), rule(), 2)
    assert second.series[0].value == 0.0


async def test_a_counter_reset_counts_from_zero_like_increase() -> None:
    target = Target(page(1000, 10), page(50, 5, started=OPENED - 5))
    _, second = await scrape_all(target, rule(), 2)
    assert second.series[0].value == pytest.approx(5 / 55)


async def test_a_process_started_after_the_window_opened_counts_from_zero() -> None:
    # The new version's process: what it served before our first scrape is evidence.
    target = Target(page(90, 10, started=OPENED + 2))
    (first,) = await scrape_all(target, rule(), 1)
    assert first.series[0].value == pytest.approx(0.1)


async def test_no_traffic_is_no_data() -> None:
    _, second = await scrape_all(Target(page(1000, 1), page(1000, 1)), rule(), 2)
    assert second.kind is SampleKind.NO_DATA


async def test_slower_than_counts_observations_above_the_bucket() -> None:
    hist = "\n".join(
        [
            "# TYPE http_request_duration_highr_seconds histogram",
            'http_request_duration_highr_seconds_bucket{{le="1.0"}} {a}',
            'http_request_duration_highr_seconds_bucket{{le="2.0"}} {b}',
            'http_request_duration_highr_seconds_bucket{{le="+Inf"}} {c}',
            "http_request_duration_highr_seconds_count {c}",
            "http_request_duration_highr_seconds_sum 1.0",
        ]
    )
    pages = [hist.format(a=80, b=90, c=100), hist.format(a=120, b=140, c=200)]
    r = rule(
        errors={"metric": "http_request_duration_highr_seconds", "slower_than": 2},
        total={"metric": "http_request_duration_highr_seconds_count"},
    )
    _, second = await scrape_all(Target(*pages), r, 2)
    assert second.series[0].value == pytest.approx((60 - 10) / 100)  # slow: 10 → 60
    bad = rule(errors={"metric": "http_request_duration_highr_seconds", "slower_than": 3},
               total={"metric": "http_request_duration_highr_seconds_count"})  # fmt: skip
    (failed,) = await scrape_all(Target(pages[0]), bad, 1)
    assert failed.kind is SampleKind.ERROR and not failed.transient
    assert "no bucket le=3 (buckets: 1, 2)" in (failed.error or "")


async def test_gauge_sums_the_matching_series() -> None:
    r = rule(value="gauge", metric={"metric": "http_requests_total", "match": {"status": "2xx"}})
    (sample,) = await scrape_all(Target(page(7, 3)), r, 1)
    assert sample.series[0].value == 7


@pytest.mark.parametrize(
    ("target", "fragment", "transient"),
    [
        (Target("x", status=503), "answered HTTP 503", True),
        (Target("not a metrics page {{{"), "not a Prometheus metrics page", True),
        (Target("# TYPE a counter\n" + "".join(f'a{{i="{i}"}} 1\n' for i in range(30))),
         "more than 20 series", False),
        (Target("a 1\n" * 2000), "exceeds 1024 bytes", False),
    ],
)  # fmt: skip
async def test_bad_answers_are_errors_naming_the_problem(
    target: Target, fragment: str, transient: bool
) -> None:
    source = ScrapeSource(
        httpx.AsyncClient(transport=httpx.MockTransport(target.handler)), max_series=20
    )
    ctx = SampleContext("w1", {}, OPENED, True, since=OPENED)
    sample = await source.sample(rule(max_bytes=1024), ctx)
    assert sample.kind is SampleKind.ERROR and fragment in (sample.error or "")
    assert sample.transient is transient


async def test_refused_connection_is_transient_and_replay_is_refused() -> None:
    source = ScrapeSource(httpx.AsyncClient())
    r = rule(url="http://127.0.0.1:9/metrics")
    refused = await source.sample(r, SampleContext("w", {}, OPENED, True, since=OPENED))
    assert refused.kind is SampleKind.ERROR and refused.transient
    past = await source.sample(r, SampleContext("w", {}, OPENED, False))
    assert past.kind is SampleKind.ERROR and not past.transient
    await source.close()


def test_rule_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="needs 'errors' and 'total'"):
        rule(errors=None)
    with pytest.raises(ValueError, match="needs a 'metric' selector"):
        rule(value="increase")
    with pytest.raises(ValueError, match="invalid regex"):
        rule(errors={"metric": "x", "match": {"status": "~("}})


def test_label_regexes_are_re2_linear_time_and_refuse_backreferences() -> None:
    started = time.monotonic()
    # With Python's re this one label would take minutes (it doubles per character).
    assert not _matches({"status": "a" * 40 + "!"}, {"status": "~(a+)+$"})
    assert time.monotonic() - started < 1.0
    assert _matches({"status": "503"}, {"status": "~5.."})
    with pytest.raises(ValueError, match="not a regular expression RE2 accepts"):
        rule(errors={"metric": "x", "match": {"status": "~(5)\\1"}})


ABSURD = {"1.7e308": "1.7e308", "+Inf": "+Inf", "negative": "-5", "past 2**53": "2e16"}


@pytest.mark.parametrize("bad", ABSURD.values(), ids=ABSURD.keys())
@pytest.mark.parametrize("role", ["errors", "total"])
async def test_an_absurd_counter_reading_fails_the_scrape_and_is_never_counted(
    bad: str, role: str
) -> None:
    # Issue 25: one reading of 1.7e308 made a later 50 % error rate read "ok".
    broken = page(bad, 10) if role == "total" else page(1050, bad)
    target = Target(page(1000, 10), broken, page(1100, 110))
    _, second, third = await scrape_all(target, rule(), 3)
    assert second.kind is SampleKind.ERROR and second.transient is False
    assert "which no counter can hold (NaN, infinite, negative or past 2**53)" in (
        second.error or ""
    )
    assert third.series[0].value == pytest.approx(0.5)  # 100 of 200, as if never read
    assert third.detail == "100 of 200 since window start"


LABEL_HOST_RULES = (
    (REPO / "rules/alternatives/api-scrape.yml").read_text()
    + """
  - name: probes
    rules:
      - name: health
        source: http
        url: "http://{{ labels.app_host }}:8000/health"
        action: rollback
"""
)


@pytest.mark.parametrize(
    ("app_host", "allowed", "fetched"),
    [
        ("169.254.169.254", ["api"], False),  # cloud metadata, chosen by an API caller
        ("evil.example", [], False),
        ("api", ["api"], True),
        ("api", ["api:8000"], True),
        ("api", ["api:9000"], False),
    ],
)
async def test_a_host_the_labels_choose_is_fetched_only_when_allowed(
    tmp_path: Path, app_host: str, allowed: list[str], fetched: bool
) -> None:
    # Issue 25: the shipped api-scrape.yml takes its host from a deployment label.
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=page(1000, 1))

    settings = app_settings(tmp_path, LABEL_HOST_RULES, http_allowed_hosts=allowed)
    rules = {r.name: r for r in wiring.checked_rules(settings).rules}
    ctx = SampleContext("w1", {"service": "api", "labels.app_host": app_host}, OPENED, True)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        sources = wiring.sources(settings, SqliteStore(":memory:"), client, client=client)
        scraped = await sources.get("scrape").sample(rules["api-5xx-ratio-scrape"], ctx)
        probed = await sources.get("http").sample(rules["health"], ctx)
        await sources.close()
    if fetched:
        assert [r.url.host for r in seen] == ["api", "api"]
        assert probed.kind is SampleKind.VALUES and scraped.kind is SampleKind.NO_DATA
        return
    assert seen == []  # nothing was sent
    for sample, what in ((scraped, "scrape"), (probed, "probe")):
        assert sample.kind is SampleKind.ERROR and sample.transient is False  # never a breach
        assert sample.error == (
            f"{what}: host {app_host}:8000 comes from the deployment's labels and is not in "
            "http_allowed_hosts: add it there, or write the host in the rule"
        )


@pytest.mark.parametrize(
    ("template", "from_labels"),
    [
        ("http://{{ labels.app_host }}:8000/metrics", True),
        ("http://app-{{ service }}.internal/metrics", True),
        ("{{ labels.url }}", True),
        ("http://127.0.0.1:{{ labels.port }}/metrics", False),  # the rule names the host
        ("http://api:8000/health/{{ service }}?v={{ version }}", False),
    ],
)
def test_which_templates_let_the_labels_choose_the_host(template: str, from_labels: bool) -> None:
    assert host_from_labels(template) is from_labels


def test_absurd_rows_are_no_change_and_never_a_start_point() -> None:
    # The postgres source's counters: rows may hold gauges (negative is fine), never 1e308.
    start = {"a": (10.0, -3.0), "b": (5.0, 1.0)}
    now = {"a": (1.7e308, -3.0), "b": (7.0, math.inf), "c": (2.0, -1.0)}
    assert deltas(now, start) == {"c": (2.0, -1.0)}
    assert carried(now, start) == {"a": (10.0, -3.0), "b": (5.0, 1.0), "c": (2.0, -1.0)}
    assert carried(now, {}) == {"c": (2.0, -1.0)}
