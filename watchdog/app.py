"""The composition root: builds every part from Settings and owns their lifetimes.

Nothing else in the package reads settings or constructs transports; tests build an
:class:`App` with their own Settings (and a fake clock where they need one).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from watchdog.actions.alembic import AlembicExecutor
from watchdog.actions.base import Executor
from watchdog.actions.command import CommandExecutor
from watchdog.actions.compose import ComposeExecutor
from watchdog.actions.http import HttpExecutor
from watchdog.actions.kubernetes import KubernetesExecutor
from watchdog.actions.plan import PlanRunner
from watchdog.actions.render import RenderExecutor
from watchdog.actions.verify import VerifyExecutor
from watchdog.clock import Clock, SystemClock
from watchdog.coord import SingleNode
from watchdog.detect import DeployDetector
from watchdog.engine import Engine, RuleBook
from watchdog.errors import ConfigError
from watchdog.escalation import Escalator
from watchdog.inbox import AlertInbox
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
from watchdog.rulefile.load import RuleSet, load_rules
from watchdog.settings import Settings
from watchdog.sources import Sources
from watchdog.sources.alertmanager import AlertmanagerSource
from watchdog.sources.http import HttpSource
from watchdog.sources.log import LogSource
from watchdog.sources.postgres import PostgresSource
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.redis import RedisSource
from watchdog.store import open_store
from watchdog.store.base import Store
from watchdog.versions import VersionReader
from watchdog.web.alertmanager import (
    RECEIVER_PATH,
    Receiver,
    ReceiverAuth,
    add_alertmanager_routes,
)
from watchdog.web.server import build_web_app
from watchdog.web.slack import SLACK_PATH, SlackAccess, SlackInteractions
from watchdog.web.status import STATUS_PATHS, StatusAuth, add_status_routes
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
    detector: DeployDetector | None = None
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
        check_targets(rules.current, s)
        store = open_store(s.store_url.get_secret_value())
        await store.open()
        self._stack.push_async_callback(store.close)
        sources = self._sources(store)
        self._stack.push_async_callback(sources.close)
        client = httpx.AsyncClient()
        self._stack.push_async_callback(client.aclose)
        versions = self._version_reader(client)
        executors: dict[str, Executor] = {
            "http": HttpExecutor(client, s.http_allowed_hosts, clock=self.clock),
            "command": CommandExecutor(),
            **self._platform_executors(client, versions),
        }
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        metrics.set_leader(True)  # SingleNode always leads
        channels, slack = self._channels(store, client)
        outbox = Outbox(store, channels, s.notify.routes, self.clock)
        journal = Journal(store, FanoutNotifier([LogNotifier()], metrics=metrics), outbox=outbox)
        pipeline = build_pipeline(
            store=store,
            journal=journal,
            coordinator=SingleNode(),
            runner=PlanRunner(executors, self.clock),
            plans=s.plans,
            default_plan=s.default_plan,
            clock=self.clock,
            metrics=metrics,
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
        metrics.watch_windows(engine.open_windows)
        detector = self._detector(versions, windows, store, metrics)
        receiver = self._receiver(AlertInbox(store, engine, self.clock))
        web_app = build_web_app(
            windows,
            api_token=s.api_token.get_secret_value() if s.api_token else None,
            base_url=s.base_url,
            max_body_bytes=s.max_body_bytes,
            registry=registry,
            ready=self._ready,
            clock=self.clock.now,
            extra_routes=lambda app: self._extra_routes(app, windows, receiver, notify),
            open_paths=[
                *STATUS_PATHS,
                *([RECEIVER_PATH] if receiver.auth.configured else []),
                *([SLACK_PATH] if notify.interactions else []),
            ],
            body_limits={RECEIVER_PATH: s.alertmanager_max_body_bytes},
        )
        self.parts = Parts(store, engine, windows, registry, web_app, detector, notify)
        await self._listen(web_app)
        self._run_worker(notify.worker)
        if schedule:
            self._schedule(engine, detector)
            self._schedule_escalation(notify.escalator)
        log.info("watchdog started", url=self.url, rules=len(rules.current), tick=s.tick)
        return self.parts

    def _status_auth(self) -> StatusAuth:
        s = self.settings
        tokens = [t.get_secret_value().encode() for t in (s.api_token, s.status_token) if t]
        secure = s.base_url.startswith("https://")
        return StatusAuth(tuple(tokens), public=s.status_public, secure_cookie=secure)

    def _extra_routes(
        self,
        app: web.Application,
        windows: WindowService,
        receiver: Receiver,
        notify: NotifyParts,
    ) -> None:
        add_status_routes(app, windows, auth=self._status_auth(), clock=self.clock.now)
        add_alertmanager_routes(app, receiver)
        if notify.interactions is not None:
            notify.interactions.add_routes(app)

    def _receiver(self, inbox: AlertInbox) -> Receiver:
        s = self.settings
        auth = ReceiverAuth(
            token=_secret_bytes(s.alertmanager_token),
            username=s.alertmanager_username.encode() if s.alertmanager_username else None,
            password=_secret_bytes(s.alertmanager_password),
        )
        return Receiver(inbox, auth, max_inflight=s.alertmanager_max_inflight)

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

    def _sources(self, store: Store) -> Sources:
        s = self.settings
        token = s.prometheus_token.get_secret_value() if s.prometheus_token else None
        prometheus = PrometheusSource(
            s.prometheus_url,
            timeout=s.prometheus_timeout,
            retries=s.prometheus_retries,
            concurrency=s.prometheus_concurrency,
            token=token,
        )
        secrets = {
            "postgres": {k: v.get_secret_value() for k, v in s.postgres_targets.items()},
            "redis": {k: v.get_secret_value() for k, v in s.redis_targets.items()},
        }
        return Sources(
            {
                "prometheus": prometheus,
                "http": HttpSource(),
                "postgres": PostgresSource(secrets["postgres"]),
                "redis": RedisSource(secrets["redis"]),
                "log": LogSource(),
                "alertmanager": AlertmanagerSource(store),
            }
        )

    async def _listen(self, web_app: web.Application) -> None:
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.listen_port

    def _version_reader(self, client: httpx.AsyncClient) -> VersionReader:
        s = self.settings
        token = s.prometheus_token.get_secret_value() if s.prometheus_token else None
        return VersionReader(client, s.prometheus_url, prometheus_token=token)

    def _platform_executors(
        self, client: httpx.AsyncClient, versions: VersionReader
    ) -> dict[str, Executor]:
        s = self.settings
        key = s.render_api_key.get_secret_value() if s.render_api_key else None
        return {
            "render": RenderExecutor(client, s.render_api_url, key, self.clock),
            "compose": ComposeExecutor(),
            "kubernetes": KubernetesExecutor(),
            "alembic": AlembicExecutor(),
            "verify": VerifyExecutor(versions, self.clock),
        }

    def _detector(
        self, versions: VersionReader, windows: WindowService, store: Store, metrics: Metrics
    ) -> DeployDetector | None:
        if not self.settings.detect:
            return None
        return DeployDetector(
            self.settings.detect,
            reader=versions,
            windows=windows,
            store=store,
            clock=self.clock,
            metrics=metrics,
        )

    def _schedule(self, engine: Engine, detector: DeployDetector | None = None) -> None:
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
        if detector is not None:  # it only calls tick(); each service has its own interval
            scheduler.add_job(
                detector.tick,
                "interval",
                seconds=self.settings.tick,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id="detect",
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


def check_targets(rules: RuleSet, settings: Settings) -> None:
    """Refuse rules naming a postgres/redis target Settings does not configure."""
    configured = {"postgres": settings.postgres_targets, "redis": settings.redis_targets}
    problems = []
    for rule in rules.rules:
        target = getattr(rule, "target", None)
        known = configured.get(rule.source)
        if target is not None and known is not None and target not in known:
            env = f"WATCHDOG_{rule.source.upper()}_TARGETS"
            names = ", ".join(sorted(known)) or "none"
            problems.append(
                f"{rule.origin}: rule {rule.name!r} names {rule.source} target {target!r}, "
                f"which is not configured (set {env}; configured: {names})"
            )
    if problems:
        raise ConfigError(problems)


def _secret_bytes(secret: SecretStr | None) -> bytes | None:
    return None if secret is None else secret.get_secret_value().encode()


def freeze_startup_heap() -> None:
    """Exclude everything built at startup from the garbage collector's full passes.

    Otherwise each full collection walks every long-lived object (schemas, routes,
    libraries) and stalls the event loop for tens of milliseconds: the receiver's p99
    on 500-alert deliveries triples (bench/alertmanager_receiver.py).
    """
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    app = App(settings)
    await app.start()
    freeze_startup_heap()
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
