"""The composition root: builds every part from Settings and owns their lifetimes.

Nothing else in the package reads settings or constructs transports; tests build an
:class:`App` with their own Settings (and a fake clock where they need one).
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from slack_sdk.web.async_client import AsyncWebClient

from watchdog.actions.base import Executor
from watchdog.actions.command import CommandExecutor
from watchdog.actions.http import HttpExecutor
from watchdog.actions.plan import PlanRunner
from watchdog.clock import Clock, SystemClock
from watchdog.coord import SingleNode
from watchdog.engine import Engine, RuleBook
from watchdog.escalation import Escalator
from watchdog.journal import Journal
from watchdog.logs import configure_logging
from watchdog.metrics import Metrics
from watchdog.notify import FanoutNotifier, LogNotifier
from watchdog.notify.channel import Channel
from watchdog.notify.delivery import Backoff, DeliveryWorker, journal_report
from watchdog.notify.outbox import Outbox
from watchdog.notify.pagerduty import PagerDutyChannel
from watchdog.notify.render import Links
from watchdog.notify.slack import SlackChannel
from watchdog.notify.webhook import SlackWebhookChannel, WebhookChannel
from watchdog.pipeline import build_pipeline
from watchdog.rulefile.load import load_rules
from watchdog.settings import Settings
from watchdog.sources import Sources
from watchdog.sources.http import HttpSource
from watchdog.sources.prometheus import PrometheusSource
from watchdog.store import open_store
from watchdog.store.base import Store
from watchdog.web.server import build_web_app
from watchdog.web.slack import SLACK_PATH, SlackAccess, SlackInteractions
from watchdog.windows import WindowService

log = structlog.get_logger("watchdog.app")


@dataclass
class Parts:
    """Everything the root built, for callers (and tests) that need to reach in."""

    store: Store
    engine: Engine
    windows: WindowService
    registry: CollectorRegistry
    web_app: web.Application
    notify: NotifyParts | None = None


@dataclass
class NotifyParts:
    """The notification side: outbox, delivery worker, Slack buttons, escalation."""

    outbox: Outbox
    worker: DeliveryWorker
    channels: dict[str, Channel]
    interactions: SlackInteractions | None
    escalator: Escalator | None


class App:
    """The running service: store, sources, engine, scheduler and HTTP server."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._stack = AsyncExitStack()
        self._scheduler: AsyncIOScheduler | None = None
        self.parts: Parts | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Where the HTTP server listens."""
        return f"http://{self.settings.listen_host}:{self.port}"

    async def start(self, *, schedule: bool = True) -> Parts:
        """Build every part, open the store, start listening and (optionally) ticking."""
        s = self.settings
        rules = RuleBook(load_rules(s.rules))
        store = open_store(s.store_url.get_secret_value())
        await store.open()
        self._stack.push_async_callback(store.close)
        sources = self._sources()
        self._stack.push_async_callback(sources.close)
        client = httpx.AsyncClient()
        self._stack.push_async_callback(client.aclose)
        executors: dict[str, Executor] = {
            "http": HttpExecutor(client, s.http_allowed_hosts, clock=self.clock),
            "command": CommandExecutor(),
        }
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        channels, slack = self._channels(store, client)
        outbox = Outbox(store, channels, s.notify.routes, self.clock)
        journal = Journal(store, FanoutNotifier([LogNotifier()]), outbox=outbox)
        pipeline = build_pipeline(
            store=store,
            journal=journal,
            coordinator=SingleNode(),
            runner=PlanRunner(executors, self.clock),
            plans=s.plans,
            default_plan=s.default_plan,
            clock=self.clock,
        )
        engine = Engine(
            store=store,
            sources=sources,
            rules=rules,
            pipeline=pipeline,
            journal=journal,
            clock=self.clock,
            metrics=metrics,
            blind_after=s.notify.blind_after,
        )
        self._stack.push_async_callback(engine.drain)
        windows = WindowService(
            engine,
            default_window=s.window,
            supersede=s.supersede,
            plans=s.plans,
            default_plan=s.default_plan,
        )
        notify = self._notify_parts(store, journal, outbox, channels, slack, windows)
        metrics.rules_loaded(len(rules.current), ok=True)
        web_app = build_web_app(
            windows,
            api_token=s.api_token.get_secret_value() if s.api_token else None,
            base_url=s.base_url,
            max_body_bytes=s.max_body_bytes,
            registry=registry,
            ready=self._ready,
            clock=self.clock.now,
            extra_routes=notify.interactions.add_routes if notify.interactions else None,
            open_paths={SLACK_PATH} if notify.interactions else (),
        )
        self.parts = Parts(store, engine, windows, registry, web_app, notify)
        await self._listen(web_app)
        self._run_worker(notify.worker)
        if schedule:
            self._schedule(engine)
            self._schedule_escalation(notify.escalator)
        log.info("watchdog started", url=self.url, rules=len(rules.current), tick=s.tick)
        return self.parts

    def _channels(
        self, store: Store, client: httpx.AsyncClient
    ) -> tuple[dict[str, Channel], SlackChannel | None]:
        n = self.settings.notify
        links = Links(self.settings.base_url, self.settings.prometheus_url)
        channels: dict[str, Channel] = {}
        slack = None
        if n.slack_bot_token is not None:
            web_client = AsyncWebClient(
                token=n.slack_bot_token.get_secret_value(),
                base_url=n.slack_api_url,
                timeout=max(1, round(n.timeout)),
                retry_handlers=[],  # the delivery worker owns retries
            )
            slack = SlackChannel(web_client, store, n.slack_channel, links, n.oncall_ids)
            channels["slack"] = slack
        if n.slack_webhook_url is not None:
            url = n.slack_webhook_url.get_secret_value()
            channels["slack_webhook"] = SlackWebhookChannel(client, url, links, n.timeout)
        if n.webhook_url is not None:
            secret = n.webhook_secret.get_secret_value() if n.webhook_secret else None
            channels["webhook"] = WebhookChannel(
                client, n.webhook_url, self.clock, secret, n.timeout
            )
        if n.pagerduty_routing_key is not None:
            key = n.pagerduty_routing_key.get_secret_value()
            channels["pagerduty"] = PagerDutyChannel(
                client, store, n.pagerduty_url, key, links, n.timeout
            )
        return channels, slack

    def _notify_parts(
        self,
        store: Store,
        journal: Journal,
        outbox: Outbox,
        channels: dict[str, Channel],
        slack: SlackChannel | None,
        windows: WindowService,
    ) -> NotifyParts:
        n = self.settings.notify
        backoff = Backoff(n.timeout, n.backoff, n.backoff_max, n.max_attempts)
        report = journal_report(journal, self.clock)
        worker = DeliveryWorker(
            store, channels, self.clock, report, backoff=backoff, wake=outbox.wake, poll=n.poll
        )
        interactions = None
        if n.slack_signing_secret is not None and slack is not None:
            access = SlackAccess(frozenset(n.oncall_ids), frozenset(n.approver_ids))
            secret = n.slack_signing_secret.get_secret_value()
            interactions = SlackInteractions(windows, secret, access, slack, self.clock)
            self._stack.push_async_callback(interactions.drain)
        escalator = None
        if n.escalate_after is not None:
            escalator = Escalator(store, journal, self.clock, n.escalate_after)
        return NotifyParts(outbox, worker, channels, interactions, escalator)

    def _run_worker(self, worker: DeliveryWorker) -> None:
        task = asyncio.create_task(worker.run(), name="delivery")

        async def stop() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        self._stack.push_async_callback(stop)

    def _schedule_escalation(self, escalator: Escalator | None) -> None:
        if escalator is None or self._scheduler is None:
            return
        self._scheduler.add_job(
            escalator.check,
            "interval",
            seconds=self.settings.tick,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="escalate",
        )

    def _sources(self) -> Sources:
        s = self.settings
        token = s.prometheus_token.get_secret_value() if s.prometheus_token else None
        prometheus = PrometheusSource(
            s.prometheus_url,
            timeout=s.prometheus_timeout,
            retries=s.prometheus_retries,
            concurrency=s.prometheus_concurrency,
            token=token,
        )
        return Sources({"prometheus": prometheus, "http": HttpSource()})

    async def _listen(self, web_app: web.Application) -> None:
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.listen_port

    def _schedule(self, engine: Engine) -> None:
        # APScheduler only calls tick(); the engine decides what is due.
        scheduler = AsyncIOScheduler()
        scheduler.add_job(
            engine.tick,
            "interval",
            seconds=self.settings.tick,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            id="tick",
        )
        scheduler.start()
        self._scheduler = scheduler

    async def _ready(self) -> bool:
        return self.parts is not None

    async def stop(self) -> None:
        """Stop ticking, finish what is in flight, close everything in reverse order."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self._stack.aclose()
        log.info("watchdog stopped")


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    app = App(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await app.stop()


def run_server(settings: Settings) -> None:
    """Blocking entry point used by ``watchdog serve``."""
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    asyncio.run(serve(settings))
