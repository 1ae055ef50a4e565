"""Issue 25 M4 re-run: every outbound client against a hostile upstream on loopback.

Each source, channel, marker and executor is pointed at :class:`HostileUpstream`
answering a 512 MiB gzip bomb, a 300 MiB body, a 500 with 50 MiB of JSON, or JSON
nested 100,000 deep. The bound users care about: the call ends with an answer or a
clear error (never a traceback), Python memory grows by at most the cap (traced
peak, < 50 MB), and the upstream was not read to the end (reading stopped at the cap).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.hostile import MIB, HostileUpstream
from tests.world import app_settings, opened
from watchdog import httpedge
from watchdog.actions.base import ActionContext
from watchdog.actions.http import HttpExecutor
from watchdog.actions.render import RenderExecutor
from watchdog.actions.spec import HttpStep, RenderStep
from watchdog.clock import FakeClock
from watchdog.errors import WatchdogError
from watchdog.model import Deployment, Event, EventKind, Sample, SampleKind, Window, WindowPhase
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
from watchdog.store.sqlite import SqliteStore
from watchdog.versions import VersionProbe, VersionReader

pytestmark = pytest.mark.integration

TOKEN = "hostile-upstream-token-0123456789"
DEPLOYMENT = Deployment("api", "prod", "v2", "v1")
WINDOW = Window("w1", DEPLOYMENT, WindowPhase.ROLLING_BACK, 1.0, 61.0, 1.0)
EVENT = Event("w1", 5.0, EventKind.WINDOW_OPENED, "watching", seq=1)
LINKS = Links("http://watchdog.example", "http://prom.example:9090")
BOUND = 50 * MIB
RULES = """\
groups:
  - name: api
    rules: [{name: new-issues, source: sentry, project: api}]
"""

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


@pytest.fixture
async def upstream() -> AsyncIterator[HostileUpstream]:
    server = HostileUpstream()
    await server.start()
    yield server
    await server.stop()


async def _measured(call: Call, url: str) -> tuple[Any, int]:
    """The call's result (or its WatchdogError) and the traced Python memory peak."""
    async with httpx.AsyncClient() as client:
        tracemalloc.start()
        try:
            result: Any = await call(client, url)
        except WatchdogError as exc:
            result = exc
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    return result, peak


def _refused_or_bounded(result: Any) -> None:
    """A failed sample, a WatchdogError, or an answer from the head: never a crash."""
    if isinstance(result, Sample):
        assert result.kind is SampleKind.ERROR or (result.series and result.series[0].value == 1)


@pytest.mark.parametrize("mode", ["bomb", "huge", "error"])
@pytest.mark.parametrize("name", list(CALLS))
async def test_a_hostile_answer_is_bounded(upstream: HostileUpstream, name: str, mode: str) -> None:
    upstream.mode = mode
    result, peak = await _measured(CALLS[name], upstream.url)
    _refused_or_bounded(result)
    assert peak < BOUND, f"{name} held {peak / MIB:.0f} MiB reading a {mode}"
    if mode != "bomb":  # the bomb's 0.5 MB fit in the socket buffers anyway
        full = {"huge": 300 * MIB, "error": 50 * MIB}[mode]
        assert all(sent < full for sent in upstream.sent), "read to the end"


@pytest.mark.parametrize("name", ["sentry", "loki", "version read", "render step", "http probe"])
async def test_deeply_nested_json_is_a_clear_error(upstream: HostileUpstream, name: str) -> None:
    upstream.mode = "deep"
    result, _ = await _measured(CALLS[name], upstream.url)
    text = (result.error or result.detail) if isinstance(result, Sample) else str(result)
    assert "nested deeper than 64 levels" in (text or "")


@pytest.mark.parametrize("name", ["sentry", "loki", "grafana", "render step"])
async def test_an_upstream_echoing_the_token_puts_it_nowhere(
    tmp_path: Path, upstream: HostileUpstream, name: str
) -> None:
    """Issue 25 low: an error body quoting the request's token reached the journal, the
    status page, Slack and the webhook. The app's edge masks every configured secret."""
    upstream.mode = "echo"
    settings = app_settings(tmp_path, RULES, sentry_org="acme", sentry_token=TOKEN)
    try:
        async with opened(settings), httpx.AsyncClient() as client:  # the app installs its
            try:  # secrets in the edge's scrubber
                result: Any = await CALLS[name](client, upstream.url)
            except WatchdogError as exc:
                result = exc
    finally:
        httpedge.set_scrubber(str)
    text = (result.error or "") if isinstance(result, Sample) else str(result)
    assert "401" in text and "not valid for /" in text and TOKEN not in text
