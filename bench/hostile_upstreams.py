"""Every outbound client against a hostile upstream on loopback (issue 25 M4).

Each source, channel, marker and executor reads a 512 MiB gzip bomb, a 300 MiB body and
a 500 with 50 MiB of JSON from :class:`tests.servers.hostile.HostileUpstream`; the table
gives RSS before, the peak and after, and the worst event-loop stall (a 5 ms ticker)
over all of them. Target: peak RSS ≤ before + 50 MB, no stall > 100 ms.

    python -m bench.hostile_upstreams            # all three answers
    python -m bench.hostile_upstreams --modes bomb
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.servers.hostile import HostileUpstream
from watchdog.actions.base import ActionContext
from watchdog.actions.http import HttpExecutor
from watchdog.actions.render import RenderExecutor
from watchdog.actions.spec import HttpStep, RenderStep
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Deployment, Event, EventKind, Sample, Window, WindowPhase
from watchdog.notify.markers import GrafanaAnnotations, SentryDeploys
from watchdog.notify.pagerduty import PagerDutyChannel
from watchdog.notify.render import Links
from watchdog.notify.slack import SlackApi, SlackChannel
from watchdog.notify.webhook import WebhookChannel
from watchdog.rulefile.schema import HttpRule
from watchdog.rulefile.telemetry import LokiRule, ScrapeRule, SentryRule
from watchdog.sources.base import SampleContext
from watchdog.sources.http import HttpSource
from watchdog.sources.loki import LokiSource
from watchdog.sources.scrape import ScrapeSource
from watchdog.sources.sentry import SentrySource
from watchdog.sources.versions import VersionProbe, VersionReader
from watchdog.store.sqlite import SqliteStore

TOKEN = "hostile-upstream-token-0123456789"
DEPLOYMENT = Deployment("api", "prod", "v2", "v1")
WINDOW = Window("w1", DEPLOYMENT, WindowPhase.ROLLING_BACK, 1.0, 61.0, 1.0)
EVENT = Event("w1", 5.0, EventKind.WINDOW_OPENED, "watching", seq=1)
LINKS = Links("http://watchdog.example", "http://prom.example:9090")
Call = Callable[[httpx.AsyncClient, str], Awaitable[Any]]


def _ctx() -> SampleContext:
    return SampleContext("w1", DEPLOYMENT.template_vars(), time.time(), since=time.time() - 60)


async def sentry(client: httpx.AsyncClient, url: str) -> Sample:
    rule = SentryRule.model_validate({"name": "n", "source": "sentry", "project": "api"})
    return await SentrySource(url, "acme", TOKEN, client=client).sample(rule, _ctx())


async def loki(client: httpx.AsyncClient, url: str) -> Sample:
    rule = LokiRule.model_validate(
        {"name": "n", "source": "loki", "query": 'sum(rate({app="api"}[1m]))', "threshold": "> 0"}
    )
    return await LokiSource(url, client=client, token=TOKEN).sample(rule, _ctx())


async def scrape(client: httpx.AsyncClient, url: str) -> Sample:
    rule = ScrapeRule.model_validate(
        {"name": "n", "source": "scrape", "url": f"{url}/metrics", "value": "gauge",
         "metric": {"metric": "up"}, "threshold": "< 1"}
    )  # fmt: skip
    return await ScrapeSource(client).sample(rule, _ctx())


async def probe(client: httpx.AsyncClient, url: str) -> Sample:
    rule = HttpRule.model_validate(
        {"name": "n", "source": "http", "url": f"{url}/health", "json_field": "ok"}
    )
    return await HttpSource(client).sample(rule, _ctx())


async def version(client: httpx.AsyncClient, url: str) -> str:
    return await VersionReader(client, url).read(VersionProbe(url=f"{url}/version"), {})


async def grafana(client: httpx.AsyncClient, url: str) -> None:
    await GrafanaAnnotations(client, url, TOKEN).deliver(EVENT, WINDOW)


async def sentry_deploys(client: httpx.AsyncClient, url: str) -> None:
    await SentryDeploys(client, url, "acme", TOKEN).deliver(EVENT, WINDOW)


async def webhook(client: httpx.AsyncClient, url: str) -> None:
    await WebhookChannel(client, f"{url}/hook", FakeClock()).deliver(EVENT, WINDOW)


async def pagerduty(client: httpx.AsyncClient, url: str) -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        await PagerDutyChannel(client, store, url, "R" * 32, LINKS).deliver(EVENT, WINDOW)
    finally:
        await store.close()


async def slack(client: httpx.AsyncClient, url: str) -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        api = SlackApi(client, "xoxb-" + TOKEN, f"{url}/api/")
        await SlackChannel(api, store, "#deploys", LINKS).deliver(EVENT, WINDOW)
    finally:
        await store.close()


def _action() -> ActionContext:
    return ActionContext(window=WINDOW, variables=DEPLOYMENT.template_vars())


async def http_step(client: httpx.AsyncClient, url: str) -> Any:
    host = httpx.URL(url).host
    step = HttpStep.model_validate({"kind": "http", "name": "s", "url": f"{url}/rollback"})
    return await HttpExecutor(client, [host]).run(step, _action())


async def render_step(client: httpx.AsyncClient, url: str) -> Any:
    step = RenderStep.model_validate({"kind": "render", "name": "r", "service_id": "srv-1"})
    return await RenderExecutor(client, url, TOKEN, FakeClock()).run(step, _action())


CALLS: dict[str, Call] = {
    "sentry": sentry, "loki": loki, "scrape": scrape, "http probe": probe,
    "version read": version, "grafana": grafana, "sentry deploys": sentry_deploys,
    "webhook": webhook, "pagerduty": pagerduty, "slack": slack, "http step": http_step,
    "render step": render_step,
}  # fmt: skip


def _kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) // 1024


async def measure(mode: str) -> str:
    """One row: every client against ``mode``."""
    upstream = HostileUpstream(mode=mode)
    await upstream.start()
    async with httpx.AsyncClient() as client:  # warm imports and the pool
        await sentry(client, upstream.url)
    before, worst, done = _kb("VmRSS"), 0.0, asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - began - 0.005)

    tick = asyncio.create_task(ticker())
    async with httpx.AsyncClient() as client:
        for call in CALLS.values():
            with contextlib.suppress(Exception):  # errors are the expected answers here
                await call(client, upstream.url)
    done.set()
    await tick
    await upstream.stop()
    return (
        f"| {mode} | {len(CALLS)} | {before} MB | {_kb('VmHWM')} MB | {_kb('VmRSS')} MB "
        f"| {worst * 1000:.0f} ms |"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--modes", default="bomb,huge,error")
    args = parser.parse_args(argv)
    rows = [asyncio.run(measure(m)) for m in args.modes.split(",")]
    head = "| answer | clients | RSS before | peak | after | worst stall |"
    return "\n".join([head, "|---|---:|---:|---:|---:|---:|", *rows])


if __name__ == "__main__":
    print(main())
