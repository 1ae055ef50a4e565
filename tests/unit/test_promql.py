"""PromQL vector selectors found by the tokenizer (table)."""

from __future__ import annotations

import pytest

from watchdog.rulefile.promql import Matcher, PromQLError, Selector, selectors, top_call

SVC = Matcher("service", "=", "api")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("up", [Selector("up")]),
        ('up{job="x"}', [Selector("up", (Matcher("job", "=", "x"),))]),
        (
            'sum(rate(http_requests_total{service="api",status=~"5.."}[1m]))'
            ' / sum(rate(http_requests_total{service="api"}[1m]))',
            [
                Selector("http_requests_total", (SVC, Matcher("status", "=~", "5.."))),
                Selector("http_requests_total", (SVC,)),
            ],
        ),
        (
            "histogram_quantile(0.95,\n  sum by (le) (rate(h_bucket{service='api'}[5m])))",
            [Selector("h_bucket", (SVC,))],
        ),
        (
            "sum without (instance) (x) and on (job) group_left (team) y offset 5m",
            [Selector("x"), Selector("y")],
        ),
        ("max_over_time(rate(x[1m])[10m:30s]) > bool 0", [Selector("x")]),
        ("x @ start() unless ignoring(a) z", [Selector("x"), Selector("z")]),
        (
            '{__name__="up",job!~"a|b"}',
            [Selector("up", (Matcher("__name__", "=", "up"), Matcher("job", "!~", "a|b")))],
        ),
        ('label_replace(x, "dst", "$1", "src", "(.*)")', [Selector("x")]),
        (
            'a{l="say \\"hi\\"", m=`raw\\n`} # a comment naming fake_metric',
            [Selector("a", (Matcher("l", "=", 'say "hi"'), Matcher("m", "=", "raw\\n")))],
        ),
        ("topk(3, count by (sum) (group))", []),
        ("1 + 2 * 3e2 - inf", []),
        (
            'sum(flower_events_total{type="task-failed"}) / sum(flower_events_total)',
            [
                Selector("flower_events_total", (Matcher("type", "=", "task-failed"),)),
                Selector("flower_events_total"),
            ],
        ),
    ],
)
def test_selectors(query: str, expected: list[Selector]) -> None:
    assert selectors(query) == expected


@pytest.mark.parametrize("query", ['x{a="b"', "sum(x[5m", "x{a=b}", "x ~ y"])
def test_malformed_queries_are_errors(query: str) -> None:
    with pytest.raises(PromQLError):
        selectors(query)


def test_render_round_trips_the_quoting() -> None:
    sel = Selector("a", (Matcher("l", "=~", 'x"y\\z'),))
    assert sel.render() == 'a{l=~"x\\"y\\\\z"}'
    assert selectors(sel.render()) == [sel]
    assert sel.render(keep=()) == "a"


def test_top_call() -> None:
    assert top_call("histogram_quantile(0.9, sum by (le) (rate(x[1m])))", "histogram_quantile")
    assert not top_call("histogram_quantile(0.9, x) * 1000", "histogram_quantile")
    assert not top_call("sum(x)", "histogram_quantile")
