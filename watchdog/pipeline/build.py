"""The decision paths, composed in one place: read :func:`build_pipeline` top to bottom."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from watchdog.actions.plan import PlanRunner
from watchdog.actions.spec import Plan
from watchdog.foundation.clock import Clock
from watchdog.ha.coord import Coordinator
from watchdog.ha.fencing import Deposed
from watchdog.ha.inflight import InFlight
from watchdog.pipeline.act import Act
from watchdog.pipeline.base import Pipeline
from watchdog.pipeline.crashpoints import CrashPoints
from watchdog.pipeline.evidence import Evidence
from watchdog.pipeline.grace import Grace
from watchdog.pipeline.record import Record
from watchdog.pipeline.recovery import Recovery, RecoveryStore
from watchdog.pipeline.shadow import Shadow
from watchdog.pipeline.stages import Dedup, Fence, Gate, Notify
from watchdog.plumbing.metrics import Metrics
from watchdog.store.journal import Journal


@dataclass(frozen=True)
class DecisionPaths:
    """The live path every decision takes, and recovery, which finishes interrupted ones
    with the same stages from Fence's ``begin`` on."""

    live: Pipeline
    recovery: Recovery


def build_pipeline(
    *,
    store: RecoveryStore,
    journal: Journal,
    coordinator: Coordinator,
    runner: PlanRunner,
    plans: Mapping[str, Plan],
    default_plan: str | None,
    clock: Clock,
    metrics: Metrics | None = None,
    crash: CrashPoints | None = None,  # test-only kill points (watchdog/pipeline/crashpoints.py)
    replicas: bool = False,  # other replicas may be running a step recovery finds open
    note: Callable[[], str | None] | None = None,  # why a re-drive was needed (an outage)
) -> DecisionPaths:
    """shadow → gate → dedup → grace → fence → act → record → notify; recovery: begin →
    act → record → notify."""
    deposed = Deposed(coordinator, journal, metrics)  # a deposed leader stops, loudly
    # The leader's fencing token + the unique action-log claim: exactly once.
    fence = Fence(store, coordinator, journal, crash, deposed)
    # Run the plan's steps in order, retrying transient failures; a replica that stops
    # leading stops before its next step.
    act = Act(plans, default_plan, runner, journal, clock, crash, coordinator, deposed)
    # Action log (fenced: a deposed leader's outcome is refused), confirming (or
    # terminal) phase, journal, rollbacks counter.
    record = Record(store, journal, clock, metrics, deposed, coordinator)
    # Tell people how it ended.
    notify = Notify(journal)
    live = Pipeline(
        [
            # Shadow rules and windows: say once what would have run, then stop.
            Shadow(store, journal, coordinator, plans, default_plan, metrics),
            # May we act? Notify-only rules stop here; held windows say so once;
            # `approve` rules and data-loss plans wait for a person.
            Gate(store, journal, plans, default_plan),
            # Already rolled back (or rolling back)? Cheap exit before taking the lease.
            Dedup(store),
            # A rule's grace period: "rolling back in 60s — Hold?"; a Hold in it vetoes.
            Grace(store, journal, clock),
            fence,
            act,
            record,
            notify,
        ],
        InFlight(),  # windows decided here right now: recovery leaves them alone
    )
    # A claimed rollback a crash interrupted resumes through the same stages.
    recovery = Recovery(
        store=store,
        journal=journal,
        coordinator=coordinator,
        fence=fence,
        act=act,
        record=record,
        notify=notify,
        clock=clock,
        inflight=live.inflight,
        note=note,
        # A step found open is asked its result (waited for while another replica may
        # still run it) and the target's version before it is called in doubt.
        evidence=Evidence(store, clock, act.check, wait=replicas, unrecorded=act.unrecorded),
    )
    return DecisionPaths(live, recovery)
