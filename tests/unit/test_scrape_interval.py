"""The scrape interval read from Prometheus' targets API (watchdog/sources/scrape_interval.py):
parsed per job, cached, the setting standing in until Prometheus answers. The real
Prometheus answer is exercised in tests/e2e/test_confirm_scrape.py."""

from __future__ import annotations

from typing import Any

from watchdog.foundation.errors import TransientError
from watchdog.sources.scrape_interval import REFRESH, RETRY, ScrapeIntervals, intervals


def target(job: str, every: str) -> dict[str, Any]:
    return {"labels": {"job": job, "instance": "x"}, "scrapeInterval": every, "health": "up"}


ANSWER = {
    "status": "success",
    "data": {
        "activeTargets": [target("api", "5s"), target("api", "10s"), target("node", "1m")],
        "droppedTargets": [],
    },
}


def test_the_longest_interval_per_job_is_read() -> None:
    assert intervals(ANSWER) == {"api": 10.0, "node": 60.0}


def test_malformed_answers_read_as_nothing() -> None:
    for body in (None, [], {"data": None}, {"data": {"activeTargets": [1, {"labels": 2}]}},
                 {"data": {"activeTargets": [{"labels": {"job": "a"}, "scrapeInterval": 5}]}},
                 {"data": {"activeTargets": [target("a", "soon")]}}):  # fmt: skip
        assert intervals(body) == {}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_job_gets_its_own_others_the_longest_and_reads_are_cached() -> None:
    answers: list[Any] = [ANSWER]
    clock = Clock()

    async def fetch() -> Any:
        return answers.pop(0)

    got = ScrapeIntervals(fetch, fallback=15.0, monotonic=clock)
    assert await got.grid("api") == 10.0
    assert await got.grid(None) == 60.0 and await got.grid("unknown") == 60.0
    clock.now = REFRESH  # read again
    answers.append({"data": {"activeTargets": [target("api", "5s")]}})
    assert await got.grid("api") == 5.0 and answers == []


async def test_the_setting_stands_in_until_prometheus_answers() -> None:
    clock = Clock()
    calls = 0

    async def fetch() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientError("cannot connect to Prometheus at x")
        return ANSWER

    got = ScrapeIntervals(fetch, fallback=15.0, monotonic=clock)
    assert await got.grid("api") == 15.0
    assert await got.grid("api") == 15.0 and calls == 1  # not asked again at once
    clock.now = RETRY
    assert await got.grid("api") == 10.0 and calls == 2
