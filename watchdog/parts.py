"""What the composition root (:mod:`watchdog.app`) works with: the :class:`Seams` a test or
an embedder may put in place of what Settings would build, the :class:`Parts` the root
built, the builders of the engine and the window service (each handed its parts), and
the jobs the scheduler calls on them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from watchdog import wiring
from watchdog.actions.base import Executor
from watchdog.deploys.admission import KnownVersions
from watchdog.deploys.capacity import WindowLimit
from watchdog.foundation.clock import Clock
from watchdog.ha.coord import Coordinator
from watchdog.ha.health import Health
from watchdog.lifecycle.confirm import Confirmation
from watchdog.lifecycle.detect import DeployDetector
from watchdog.lifecycle.engine import Engine, EngineParts, RuleBook
from watchdog.lifecycle.milestones import Milestones
from watchdog.lifecycle.opening import Watching, WindowOpener, WindowParts
from watchdog.lifecycle.openwindows import WindowView
from watchdog.lifecycle.reload import RuleReloader
from watchdog.lifecycle.sourcewatch import SourceWatch
from watchdog.lifecycle.windows import WindowService
from watchdog.notify.channel import Channel
from watchdog.pipeline import Pipeline
from watchdog.pipeline.handoff import Handoff
from watchdog.pipeline.recovery import Recovery
from watchdog.plumbing.metrics import Metrics
from watchdog.settings import Settings
from watchdog.sources import Source, Sources
from watchdog.store.base import Store
from watchdog.store.batch import WriteBatcher
from watchdog.store.journal import Journal
from watchdog.store.retention import Retention

if TYPE_CHECKING:
    from watchdog.ha.lease import RedisLease  # imported only where configured (wiring)


@dataclass(frozen=True)
class Seams:
    """What a test (or an embedder) may put in place of what Settings would build.

    None means "from Settings". ``transport`` carries every outbound httpx request
    (executors, webhook/PagerDuty channels, version reads, ``http`` probes), like
    ``httpx.MockTransport``; the mappings replace (or add) parts by name. A store handed
    in is opened but not closed: it belongs to the caller (e.g. two apps on one store).
    ``coordinator`` replaces the Redis lease / single node (tests that move leadership).
    """

    store: Store | None = None
    transport: httpx.AsyncBaseTransport | None = None
    sources: Mapping[str, Source] | None = None
    executors: Mapping[str, Executor] | None = None
    channels: Mapping[str, Channel] | None = None
    coordinator: Coordinator | None = None


@dataclass
class Parts:
    """Everything the root built, for callers (and tests) that need to reach in."""

    store: Store
    engine: Engine
    windows: WindowService
    registry: CollectorRegistry
    web_app: web.Application
    detector: DeployDetector | None
    notify: wiring.NotifyParts
    journal: Journal
    metrics: Metrics
    recovery: Recovery
    reloader: RuleReloader
    lease: RedisLease | None
    health: Health  # the store reachable? this replica's clock in step with it?


@dataclass(frozen=True)
class Core:
    """What the engine and the window service share: built once by the root."""

    store: Store
    journal: Journal
    clock: Clock
    rules: RuleBook


def engine_parts(s: Settings, core: Core, sources: Sources) -> EngineParts:
    """What the engine works with; the window service shares its view and handoff."""
    store, journal, clock = core.store, core.journal, core.clock
    selectors = wiring.selector_watch(s, sources)
    return EngineParts(
        sources_watch=SourceWatch(journal, s.notify.blind_after, selectors),
        milestones=Milestones(store, journal, s.judged_fraction),
        confirmation=Confirmation(store, journal),
        # A request queued for the leader is taken within a lease (a new leader) and a tick.
        handoff=Handoff(store, journal, clock, within=s.leader_lease + s.tick),
        writes=WriteBatcher(store),
        view=WindowView(store, clock, skew=s.max_clock_skew),
    )


def engine(
    s: Settings,
    core: Core,
    made: EngineParts,
    sources: Sources,
    pipeline: Pipeline,
    metrics: Metrics,
    coordinator: Coordinator,
) -> Engine:
    """The engine, handed its parts."""
    return Engine(
        store=core.store, sources=sources, rules=core.rules, pipeline=pipeline,
        journal=core.journal, clock=core.clock, parts=made, metrics=metrics,
        coordinator=coordinator, variables={"service_label": s.service_label},
    )  # fmt: skip


def windows(
    s: Settings,
    core: Core,
    made: EngineParts,
    engine: Watching,
    known: KnownVersions | None,
    limit: WindowLimit,
) -> WindowService:
    """The window service: the store, journal, clock and rule book, the engine's view and
    handoff, and the few engine operations it calls (:class:`Watching`), not the engine."""
    parts = WindowParts(
        core.store, core.journal, core.clock, core.rules, made.view, made.handoff, engine
    )
    opener = WindowOpener(
        parts, default_window=s.window, supersede=s.supersede, plans=s.plans,
        default_plan=s.default_plan, shadow=s.shadow, shadow_services=s.shadow_services,
        confirm_for=s.confirm_for, known=known, limit=limit,
    )  # fmt: skip
    return WindowService(parts, opener)


def scheduled_jobs(
    parts: Parts, s: Settings, clock: Clock
) -> dict[str, Callable[[], Awaitable[object]]]:
    """What APScheduler calls: only tick()-like methods; each part decides what is due."""
    # The engine knows whether it leads; detection and escalation journal, so only
    # the leader runs them (each window opened and escalated once across replicas).
    engine, quiet = parts.engine, parts.health.quiet  # quiet: an outage is said once
    jobs: dict[str, Callable[[], Awaitable[object]]] = {
        "tick": partial(quiet, engine.tick),
        "health": parts.health.probe,
        # A rollback nothing here runs (a store outage paused it) is re-driven.
        "redrive": partial(quiet, partial(_if_leading, engine, parts.recovery.sweep)),
    }
    if parts.detector is not None:  # each watched service has its own interval
        jobs["detect"] = partial(_if_leading, engine, parts.detector.tick)
    if parts.notify.escalator is not None:
        jobs["escalate"] = partial(_if_leading, engine, parts.notify.escalator.check)
    # Retention prunes in bounded batches that replicas may run at once (SKIP LOCKED).
    retention = Retention(
        parts.store, clock, keep=s.retention, batch=s.retention_batch, metrics=parts.metrics
    )
    jobs["retention"] = retention.run_once
    return jobs


async def _if_leading(engine: Engine, call: Callable[[], Awaitable[object]]) -> object:
    """Run a scheduler job only on the replica that leads."""
    return await call() if await engine.leading() else None
