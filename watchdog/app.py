"""The composition root: builds every part from Settings and owns their lifetimes.

Nothing else in the package reads settings or constructs transports; tests build an
:class:`App` with their own Settings (and a fake clock where they need one).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from asyncio import Task
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry

from watchdog import wiring
from watchdog.actions.plan import PlanRunner
from watchdog.clock import Clock, SystemClock
from watchdog.crashpoints import CrashPoints
from watchdog.detect import DeployDetector
from watchdog.engine import Engine, RuleBook
from watchdog.escalation import Escalator
from watchdog.ha.recovery import Recovery
from watchdog.inbox import AlertInbox
from watchdog.journal import Journal
from watchdog.logs import configure_logging
from watchdog.metrics import Metrics
from watchdog.notify import FanoutNotifier, LogNotifier
from watchdog.notify.outbox import Outbox
from watchdog.pipeline import build_pipeline
from watchdog.reload import ReloadResult, RuleReloader
from watchdog.settings import Settings
from watchdog.store import open_store
from watchdog.store.base import Store
from watchdog.web.alertmanager import (
    RECEIVER_PATH,
    Receiver,
    add_alertmanager_routes,
)
from watchdog.web.reload import add_reload_routes
from watchdog.web.server import build_web_app
from watchdog.web.status import STATUS_PATHS, add_status_routes
from watchdog.windows import WindowService

log = structlog.get_logger("watchdog.app")
T = TypeVar("T")


@dataclass
class Parts:
    """Everything the root built, for callers (and tests) that need to reach in."""

    store: Store
    engine: Engine
    windows: WindowService
    registry: CollectorRegistry
    web_app: web.Application
    detector: DeployDetector | None = None
    notify: wiring.NotifyParts | None = None


class App:
    """The running service: store, sources, engine, scheduler and HTTP server."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._stack = AsyncExitStack()
        self._scheduler: AsyncIOScheduler | None = None
        self.parts: Parts | None = None
        self.port: int | None = None
        self.recovered: asyncio.Task[int] | None = None  # unfinished rollbacks resumed
        self.reloader: RuleReloader | None = None

    @property
    def url(self) -> str:
        """Where the HTTP server listens."""
        return f"http://{self.settings.listen_host}:{self.port}"

    async def start(self, *, schedule: bool = True) -> Parts:
        """Build every part, open the store, start listening and (optionally) ticking."""
        s = self.settings
        rules = RuleBook(wiring.checked_rules(s))
        store = open_store(s.store_url.get_secret_value())
        await store.open()
        self._stack.push_async_callback(store.close)
        sources = wiring.sources(s, store)
        self._stack.push_async_callback(sources.close)
        client = httpx.AsyncClient()
        self._stack.push_async_callback(client.aclose)
        versions = wiring.version_reader(s, client)
        executors = wiring.executors(s, client, versions, self.clock)
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        channels, slack = wiring.channels(s, store, client, self.clock)
        crash = CrashPoints(s.test_crash_at)
        if crash.armed:
            log.warning(
                "TEST ONLY crash point armed: this process will kill itself", at=s.test_crash_at
            )
        channels = crash.wrap(channels)
        outbox = Outbox(store, channels, s.notify.routes, self.clock)
        journal = Journal(store, FanoutNotifier([LogNotifier()], metrics=metrics), outbox=outbox)
        coordinator, lease = wiring.coordinator(s, metrics, lambda: self._recover_soon(recovery))
        pipeline = build_pipeline(
            store=store,
            journal=journal,
            coordinator=coordinator,
            runner=PlanRunner(executors, self.clock),
            plans=s.plans,
            default_plan=s.default_plan,
            clock=self.clock,
            metrics=metrics,
            crash=crash,
        )
        recovery = Recovery.of(
            pipeline, store=store, journal=journal, coordinator=coordinator, clock=self.clock
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
        self.reloader = RuleReloader(partial(wiring.checked_rules, s), rules, engine, metrics)
        windows = WindowService(
            engine,
            default_window=s.window,
            supersede=s.supersede,
            plans=s.plans,
            default_plan=s.default_plan,
        )
        notify = wiring.notify_parts(
            s, self.clock, store, journal, outbox, channels, slack, windows
        )
        if notify.interactions is not None:
            self._stack.push_async_callback(notify.interactions.drain)
        metrics.rules_loaded(len(rules.current), ok=True)
        metrics.watch_windows(engine.open_windows)
        detector = wiring.detector(s, self.clock, versions, windows, store, metrics)
        receiver = wiring.receiver(s, AlertInbox(store, engine, self.clock))
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
                *([notify.interactions.path] if notify.interactions else []),
            ],
            body_limits={RECEIVER_PATH: s.alertmanager_max_body_bytes},
        )
        self.parts = Parts(store, engine, windows, registry, web_app, detector, notify)
        await self._listen(web_app)
        self._background(notify.worker.run(), "delivery", cancel=True)
        # A resumed plan may take minutes: in the background, and stop() waits for it.
        self._recover_soon(recovery)
        if lease is not None:
            self._stack.push_async_callback(lease.close)
            self._background(lease.run(), "lease", cancel=True)
        if schedule:
            self._schedule(engine, detector, notify.escalator)
        log.info("watchdog started", url=self.url, rules=len(rules.current), tick=s.tick)
        return self.parts

    def _extra_routes(
        self,
        app: web.Application,
        windows: WindowService,
        receiver: Receiver,
        notify: wiring.NotifyParts,
    ) -> None:
        add_status_routes(
            app, windows, auth=wiring.status_auth(self.settings), clock=self.clock.now
        )
        add_alertmanager_routes(app, receiver)
        add_reload_routes(app, self.reload)
        if notify.interactions is not None:
            notify.interactions.add_routes(app)

    async def reload(self) -> ReloadResult:
        """Re-read the rule files (SIGHUP, ``POST /-/reload``); a bad file changes nothing."""
        if self.reloader is None:
            return ReloadResult(ok=False, rules=0, errors=["not started"])
        return await self.reloader.reload()

    def _recover_soon(self, recovery: Recovery) -> None:
        # At start and on each new lease: only a leader resumes (Recovery checks).
        self.recovered = self._background(recovery.run(), "recovery", cancel=False)

    def _background(self, coro: Coroutine[Any, Any, T], name: str, *, cancel: bool) -> Task[T]:
        task = asyncio.create_task(coro, name=name)

        async def stop() -> None:
            if cancel:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        self._stack.push_async_callback(stop)
        return task

    async def _listen(self, web_app: web.Application) -> None:
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.settings.listen_host, self.settings.listen_port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.listen_port

    def _schedule(
        self,
        engine: Engine,
        detector: DeployDetector | None = None,
        escalator: Escalator | None = None,
    ) -> None:
        # APScheduler only calls tick()-like methods; each part decides what is due.
        jobs: dict[str, Callable[[], Awaitable[object]]] = {"tick": engine.tick}
        if detector is not None:  # each watched service has its own interval
            jobs["detect"] = detector.tick
        if escalator is not None:
            jobs["escalate"] = escalator.check
        scheduler = AsyncIOScheduler()
        for job_id, call in jobs.items():
            scheduler.add_job(
                call,
                "interval",
                seconds=self.settings.tick,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id=job_id,
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
    reloads: set[asyncio.Task[ReloadResult]] = set()

    def reload() -> None:
        task = asyncio.create_task(app.reload())
        reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        await stop.wait()
    finally:
        await app.stop()


def run_server(settings: Settings) -> None:
    """Blocking entry point used by ``watchdog serve``."""
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    asyncio.run(serve(settings))
