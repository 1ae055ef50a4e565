"""The composition root: builds every part from Settings and owns their lifetimes.

Nothing else in the package reads settings or constructs transports. Building is
separate from starting: :meth:`App.build` assembles the parts (no I/O), with
:class:`Seams` letting a test swap what crosses the process boundary (the store, the
HTTP transport, sources, executors, channels) for fakes; :meth:`App.open` opens the
store; :meth:`App.start` also listens, starts background work and the scheduler.
"""

from __future__ import annotations

import asyncio
from asyncio import Task
from collections.abc import Coroutine, Mapping
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import structlog
from prometheus_client import CollectorRegistry

from watchdog import wiring
from watchdog.actions.base import Executor
from watchdog.actions.plan import PlanRunner
from watchdog.deploys.capacity import WindowLimit
from watchdog.foundation.clock import Clock, SystemClock
from watchdog.ha.coord import Coordinator
from watchdog.ha.health import StoreClock
from watchdog.lifecycle.engine import RuleBook
from watchdog.lifecycle.inbox import AlertInbox
from watchdog.lifecycle.reload import ReloadResult, RuleReloader, no_rules
from watchdog.notify.channel import Channel
from watchdog.notify.outbox import Outbox
from watchdog.parts import Core, engine_parts, scheduled_jobs
from watchdog.parts import Parts as Parts
from watchdog.parts import Seams as Seams
from watchdog.parts import engine as build_engine
from watchdog.parts import windows as build_windows
from watchdog.pipeline.build import DecisionPaths, build_pipeline
from watchdog.pipeline.crashpoints import CrashPoints
from watchdog.plumbing import httpedge
from watchdog.plumbing.keepalive import KeepAliveTransport
from watchdog.plumbing.logs import Redactor
from watchdog.plumbing.metrics import Metrics
from watchdog.plumbing.ticker import Ticker
from watchdog.settings import Settings
from watchdog.sources import Source
from watchdog.store import open_store
from watchdog.store.base import Store
from watchdog.store.journal import Journal
from watchdog.web import root
from watchdog.web.listen import ConnectionsCollector, GuardedSite, start_site

if TYPE_CHECKING:
    from watchdog.ha.lease import RedisLease  # imported only where configured (wiring)

log = structlog.get_logger("watchdog.app")
T = TypeVar("T")


class App:
    """The service: built from Settings (:meth:`build`), then opened or started."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, seams: Seams | None = None
    ) -> None:
        self.settings = settings
        # One clock across replicas: the store's (ha/health.py), unless a test brings its own.
        self.clock: Clock = clock or StoreClock(SystemClock(), settings.test_clock_offset)
        self.seams = seams or Seams()
        self._stack = AsyncExitStack()
        self._ticker: Ticker | None = None
        self._opened = False
        self.parts: Parts | None = None
        self.port: int | None = None
        self.recovered: asyncio.Task[int] | None = None  # unfinished rollbacks resumed
        self.site: GuardedSite | None = None  # the listener (its connection pool)
        self._coordinator: Coordinator | None = None  # says /readyz when a token is refused

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sources: Mapping[str, Source] | None = None,
        executors: Mapping[str, Executor] | None = None,
        channels: Mapping[str, Channel] | None = None,
        coordinator: Coordinator | None = None,
    ) -> App:
        """Assemble every part (no I/O yet); the keyword seams replace what Settings builds."""
        seams = Seams(store, transport, sources, executors, channels, coordinator)
        app = cls(settings, clock=clock, seams=seams)
        app._build()
        return app

    @property
    def url(self) -> str:
        """Where the HTTP server listens."""
        return f"http://{self.settings.listen_host}:{self.port}"

    def _client(self) -> httpx.AsyncClient:
        # Prometheus is asked once per window and rule: a lean keep-alive pool for it
        # (httpx's own per-request cost was most of a core at 1,000 windows)
        transport = self.seams.transport or KeepAliveTransport(
            [self.settings.prometheus_url], httpx.AsyncHTTPTransport()
        )
        client = httpx.AsyncClient(transport=transport)
        self._stack.push_async_callback(client.aclose)
        return client

    def _build(self) -> Parts:
        s, clock, seams = self.settings, self.clock, self.seams
        rules = RuleBook(wiring.checked_rules(s))  # first: a bad file builds nothing
        store = seams.store or open_store(s.store_url.get_secret_value())
        client = self._client()
        probes = self._client() if seams.transport is not None else None
        httpedge.set_scrubber(Redactor(s.secrets()).scrub)  # quoted upstream text is shown
        sources = wiring.sources(s, store, probes, seams.sources, client=client)
        self._stack.push_async_callback(sources.close)
        versions = wiring.version_reader(s, client)
        executors = {**wiring.executors(s, client, versions, clock), **(seams.executors or {})}
        metrics = Metrics(CollectorRegistry())
        self._health = wiring.health(s, store, clock, metrics)
        crash = CrashPoints(s.test_crash_at)
        if crash.armed:
            log.warning(
                "TEST ONLY crash point armed: this process will kill itself", at=s.test_crash_at
            )
        built, slack = wiring.channels(s, store, client, clock)
        channels = crash.wrap({**built, **(seams.channels or {})})
        outbox = Outbox(store, channels, s.notify.routes, clock)
        journal = Journal(store, outbox)
        coordinator, lease = self._leadership(store, metrics)
        paths = self._decisions(store, journal, coordinator, executors, metrics, crash)
        core = Core(store, journal, clock, rules)
        made = engine_parts(s, core, sources)  # the engine's parts, shared with windows
        engine = build_engine(s, core, made, sources, paths.live, metrics, coordinator)
        self._stack.push_async_callback(engine.drain)
        reloader = RuleReloader(partial(wiring.checked_rules, s), rules, engine, metrics)
        known = wiring.known_versions(s)
        limit = WindowLimit(store, s.max_open_windows, supersede=s.supersede, metrics=metrics)
        windows = build_windows(s, core, made, engine, known, limit)
        notify = wiring.notify_parts(
            s, clock, store, journal, outbox, channels, slack, windows, metrics
        )
        if notify.interactions is not None:
            self._stack.push_async_callback(notify.interactions.drain)
        metrics.rules_loaded(len(rules.current), ok=True)
        metrics.watch_windows(engine.open_windows)
        metrics.watch_blindness(made.sources_watch.blindness.sources)
        detector = wiring.detector(s, clock, versions, windows, store, metrics, known)
        inbox = AlertInbox(store, engine, clock, max_alerts=s.max_stored_alerts)
        receiver = root.receiver(s, inbox)
        web_app = root.web_app(
            s, windows, metrics.registry, receiver, notify.interactions, clock, self._ready,
            self.reload, store,
        )  # fmt: skip
        self.parts = Parts(
            store, engine, windows, metrics.registry, web_app, detector, notify, journal, metrics,
            paths.recovery, reloader, lease, self._health,
        )  # fmt: skip
        return self.parts

    def _leadership(self, store: Store, metrics: Metrics) -> tuple[Coordinator, RedisLease | None]:
        """The lease (or single node) whose fencing tokens the store issues."""
        if self.seams.coordinator is not None:
            self._coordinator = self.seams.coordinator
            return self.seams.coordinator, None
        coordinator, lease = wiring.coordinator(
            self.settings, metrics, self._recover_soon, fence=store.advance_fence,
            eligible=self._health.may_lead,
        )  # fmt: skip
        self._coordinator = coordinator
        return coordinator, lease

    def _decisions(
        self,
        store: Store,
        journal: Journal,
        coordinator: Coordinator,
        executors: Mapping[str, Executor],
        metrics: Metrics,
        crash: CrashPoints,
    ) -> DecisionPaths:
        return build_pipeline(
            store=store,
            journal=journal,
            coordinator=coordinator,
            runner=PlanRunner(executors, self.clock),
            plans=self.settings.plans,
            default_plan=self.settings.default_plan,
            clock=self.clock,
            metrics=metrics,
            crash=crash,
            replicas=self.settings.leader_redis_url is not None,
            note=self._health.outage_note,
        )

    async def open(self) -> Parts:
        """Build (if not yet built) and open the store: ready to drive by hand (tests)."""
        parts = self.parts or self._build()
        if not self._opened:
            await parts.store.open()
            if self.seams.store is None:  # a store handed in belongs to whoever made it
                self._stack.push_async_callback(parts.store.close)
            # LIFO: evaluations still in flight finish before the store closes under them
            self._stack.push_async_callback(parts.engine.drain)
            self._opened = True
        return parts

    async def start(self, *, schedule: bool = True) -> Parts:
        """Open, listen, deliver, recover, lead, and (optionally) tick."""
        parts = await self.open()
        await parts.health.probe()  # the store's clock before any time is written
        await self._listen(parts)
        self._background(parts.notify.worker.run(), "delivery", cancel=True)
        self._recover_soon()  # a resumed plan may take minutes: stop() waits for it
        if parts.lease is not None:
            self._stack.push_async_callback(parts.lease.close)
            self._background(parts.lease.run(), "lease", cancel=True)
        if schedule:
            self._schedule(parts)
        rules = len(parts.engine.rules.current)
        log.info("watchdog started", url=self.url, rules=rules, tick=self.settings.tick)
        if empty := no_rules(parts.engine.rules.current, self.settings.rules):
            log.warning("nothing is watched: /readyz answers 503 until a reload", why=empty)
        return parts

    async def reload(self) -> ReloadResult:
        """Re-read the rule files (SIGHUP, ``POST /-/reload``); a bad file changes nothing."""
        if self.parts is None:
            return ReloadResult(ok=False, rules=0, errors=["not started"])
        return await self.parts.reloader.reload()

    def _recover_soon(self) -> None:
        # At start and on each new lease: only a leader resumes (Recovery checks).
        if self.parts is not None:
            self.recovered = self._background(self.parts.recovery.run(), "recovery", cancel=False)

    def _background(self, coro: Coroutine[Any, Any, T], name: str, *, cancel: bool) -> Task[T]:
        task = asyncio.create_task(coro, name=name)

        async def stop() -> None:
            if cancel:
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        self._stack.push_async_callback(stop)
        return task

    async def _listen(self, parts: Parts) -> None:
        s = self.settings
        limits = wiring.connection_limits(s)
        runner, site = await start_site(
            parts.web_app, s.listen_host, s.listen_port, limits, self.clock.now
        )
        self._stack.push_async_callback(runner.cleanup)
        if site.pool is not None:
            parts.registry.register(ConnectionsCollector(site.pool))
        self.site = site
        self.port = site.port

    def _schedule(self, parts: Parts) -> None:
        s = self.settings
        jobs = scheduled_jobs(parts, s, self.clock)
        self._ticker = Ticker(jobs, s.tick, every={"retention": s.retention_interval})
        self._ticker.start()

    async def _ready(self) -> bool | str:
        if self.port is None:
            return False
        problem = self._health.problem()
        if problem is None and self.parts is not None:
            problem = no_rules(self.parts.engine.rules.current, self.settings.rules)
        if problem is None and self._coordinator is not None:
            problem = self._coordinator.problem()
        return problem or True

    async def stop(self) -> None:
        """Stop ticking, finish what is in flight, close everything in reverse order."""
        if self._ticker is not None:
            await self._ticker.stop()  # the jobs in flight finish before the store closes
            self._ticker = None
        await self._stack.aclose()
        log.info("watchdog stopped")
