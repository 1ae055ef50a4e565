"""Window-scoped ranges: every `[range]` reaches back no further than the window's opening
(rounded up to the scrape grid), live and in replay; baselines are not clamped."""

from __future__ import annotations

import pytest

from tests.unit.test_prometheus_source import AT, FakePrometheus, Reply, ok, vec
from tests.unit.test_prometheus_source import fake as fake
from tests.unit.test_replay import DEPLOY, T0, History, rule
from watchdog.evaluation.replay import MAX_CLAMPED_QUERIES, Replayer
from watchdog.rulefile.load import RuleSet
from watchdog.rulefile.schema import PrometheusRule
from watchdog.sources.base import SampleContext
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.window_range import clamp_ranges, longest_range, promql_duration

CASES = [
    # (query, window age s, grid s, expected)
    ("rate(x[5m])", 12.3, 1, "rate(x[13s])"),
    ("rate(x[5m])", 0, 15, "rate(x[15s])"),  # never below one scrape: an empty range
    ("rate(x[5m])", -3, 15, "rate(x[15s])"),  # clock skew: still one step
    ("rate(x[5m])", 16, 15, "rate(x[30s])"),  # rounded *up* to the grid
    ("rate(x[5m])", 30, 15, "rate(x[30s])"),  # on the grid: kept exact
    ("rate(x[5m])", 300, 15, "rate(x[5m])"),  # old enough: as written
    ("rate(x[5m])", 3600, 15, "rate(x[5m])"),
    ("rate(x[1m])", 2.5, 0.5, "rate(x[2500ms])"),  # sub-second grids in milliseconds
    ("rate(x[1h30m])", 61, 1, "rate(x[61s])"),  # compound durations
    ("rate(x[1d])", 7200, 60, "rate(x[7200s])"),
    ("rate(x[ 5m ])", 10, 1, "rate(x[10s])"),  # spaces inside the brackets
    ("max_over_time(rate(x[1m])[10m:30s])", 45, 15, "max_over_time(rate(x[45s])[45s:30s])"),
    ("max_over_time(up[10m:])", 20, 5, "max_over_time(up[20s:])"),  # default resolution
    ('rate(x{path="[5m]"}[5m])', 9, 1, 'rate(x{path="[5m]"}[9s])'),  # strings untouched
    ("rate(x{path='[5m]'}[5m])", 9, 1, "rate(x{path='[5m]'}[9s])"),
    ('rate(x{path=~"[45]"}[5m])', 9, 1, 'rate(x{path=~"[45]"}[9s])'),
    ("rate(x[30s]) / rate(y[5m])", 40, 1, "rate(x[30s]) / rate(y[40s])"),  # each on its own
    ("up", 5, 1, "up"),  # no range at all
    ("rate(x[5m] offset 1h)", 10, 1, "rate(x[10s] offset 1h)"),  # offset: read on purpose
]


@pytest.mark.parametrize(("query", "age", "grid", "expected"), CASES)
def test_clamp_ranges(query: str, age: float, grid: float, expected: str) -> None:
    assert clamp_ranges(query, age, grid) == expected


SHARED = [
    # (window age s, grid s, expected cut of a [5m] range in a shared_by query)
    (0, 15, "15s"),  # one step, as any clamp
    (29.9, 15, "15s"),  # rounded *down*: never before the window's first step
    (30, 15, "30s"),
    (59, 15, "30s"),
    (60, 15, "60s"),
    (239, 15, "120s"),
    (240, 15, "240s"),
    (284, 15, "240s"),  # still younger than the range
    (286, 15, "5m"),  # within one step of it: as written, like any clamp
]


@pytest.mark.parametrize(("age", "grid", "cut"), SHARED)
def test_a_shared_query_is_cut_to_a_power_of_two_of_steps(
    age: float, grid: float, cut: str
) -> None:
    assert clamp_ranges("rate(x[5m])", age, grid, shared=True) == f"rate(x[{cut}])"


def test_a_shared_query_asks_six_texts_where_ages_ask_twenty() -> None:
    """Windows of every age under 5 minutes, one second apart: the texts a shared rule
    asks Prometheus (each answer holds every service's series)."""
    ages = [a / 10 for a in range(3000)]
    own = {clamp_ranges("sum by (service) (rate(x[5m]))", a, 15) for a in ages}
    shared = {clamp_ranges("sum by (service) (rate(x[5m]))", a, 15, shared=True) for a in ages}
    assert (len(own), len(shared)) == (20, 6)  # five cuts and the query as written
    old = clamp_ranges("rate(x[5m]) / rate(y[1m])", 300, 15, shared=True)
    assert old == "rate(x[5m]) / rate(y[1m])"  # old enough: as written, every range
    assert clamp_ranges("rate(x[5m]) / rate(y[1m])", 100, 15, shared=True) == (
        "rate(x[60s]) / rate(y[1m])"  # a range the window covers stays whole
    )


def test_longest_range_and_durations() -> None:
    assert longest_range("rate(a[30s]) + max_over_time(b[1m])[1h:5m]") == 3600
    assert longest_range('up{x="[9h]"}') == 0
    assert [promql_duration(s) for s in (1, 90, 0.25, 1.5)] == ["1s", "90s", "250ms", "1500ms"]


def test_grid_must_be_positive() -> None:
    with pytest.raises(ValueError, match="grid"):
        clamp_ranges("rate(x[5m])", 10, 0)


def prom_rule(query: str) -> PrometheusRule:
    return PrometheusRule(name="r", source="prometheus", query=query, threshold="> 0")


async def test_live_sample_clamps_to_the_window_and_baselines_do_not(
    fake: FakePrometheus,
) -> None:
    fake.reply = Reply(body=ok("vector", [vec("1")]))
    src = PrometheusSource(fake.url, timeout=5.0, retries=0, concurrency=2, grid=1.0)
    query = 'sum(rate(x{service="{{ service }}"}[5m]))'
    live = SampleContext("w1", {"service": "api"}, AT, since=AT - 20)
    baseline = SampleContext("w1", {"service": "api"}, AT - 3600, live=False)
    await src.sample(prom_rule(query), live)
    await src.sample(prom_rule(query), baseline)
    await src.close()
    assert [p["query"] for p in fake.params] == [
        'sum(rate(x{service="api"}[20s]))',
        'sum(rate(x{service="api"}[5m]))',
    ]


async def test_replay_clamps_each_evaluation_to_the_deploy() -> None:
    history = History(**{f"rate(x[{s}s])": (lambda t: 0.0) for s in range(1, 40)})
    history.series["rate(x[30s])"] = lambda t: 0.0
    r = rule(query="rate(x[30s])", interval=5.0)
    await Replayer(history, grid=5.0).run(RuleSet.of([r]), DEPLOY, T0, T0 + 60)
    asked = [(q, start - T0, end - T0) for q, start, end, _ in history.calls]
    # Ages 0 and 5 → 5s; 10 → 10s; …; from 30 on the query as written, in one range query.
    assert asked == [
        ("rate(x[5s])", 0, 5),
        ("rate(x[10s])", 10, 10),
        ("rate(x[15s])", 15, 15),
        ("rate(x[20s])", 20, 20),
        ("rate(x[25s])", 25, 25),
        ("rate(x[30s])", 30, 60),
    ]


async def test_replay_bounds_the_clamped_queries_of_long_ranges() -> None:
    history = History()
    history.series = _AnyQuery()  # type: ignore[assignment]
    r = rule(query="rate(x[1h])", interval=1.0)
    await Replayer(history, grid=1.0).run(RuleSet.of([r]), DEPLOY, T0, T0 + 4000)
    chunks = 4  # 4001 evaluations in range queries of at most 1,000 steps
    assert len(history.calls) <= MAX_CLAMPED_QUERIES + chunks
    assert history.calls[-1][0] == "rate(x[1h])"


class _AnyQuery(dict):  # type: ignore[type-arg]
    def __getitem__(self, key: str):  # type: ignore[no-untyped-def]
        return lambda t: 0.0


async def test_the_scrape_interval_setting_reaches_the_source(
    fake: FakePrometheus,
) -> None:
    """Settings → wiring → source: ranges round up to `prometheus_scrape_interval`."""
    from watchdog import wiring
    from watchdog.settings import Settings

    fake.reply = Reply(body=ok("vector", [vec("1")]))
    settings = Settings(prometheus_url=fake.url, prometheus_scrape_interval=4.0)
    sources = wiring.sources(settings, store=None)  # type: ignore[arg-type]
    live = SampleContext("w1", {"service": "api"}, AT, since=AT - 9)
    await sources.get("prometheus").sample(prom_rule("rate(x[5m])"), live)
    await sources.get("prometheus").close()
    assert [p["query"] for p in fake.params] == ["rate(x[12s])"]
