"""The decision pipeline, composed in one place: read :func:`build_pipeline` top to bottom."""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.actions.plan import PlanRunner
from watchdog.actions.spec import Plan
from watchdog.clock import Clock
from watchdog.crashpoints import CrashPoints
from watchdog.ha.coord import Coordinator
from watchdog.journal import Journal
from watchdog.metrics import Metrics
from watchdog.pipeline.base import Decision, Pipeline, Stage
from watchdog.pipeline.grace import Grace
from watchdog.pipeline.stages import Act, Dedup, Fence, Gate, Notify, Record
from watchdog.store.base import Store

__all__ = ["Decision", "Pipeline", "Stage", "build_pipeline"]


def build_pipeline(
    *,
    store: Store,
    journal: Journal,
    coordinator: Coordinator,
    runner: PlanRunner,
    plans: Mapping[str, Plan],
    default_plan: str | None,
    clock: Clock,
    metrics: Metrics | None = None,
    crash: CrashPoints | None = None,  # test-only kill points (watchdog/crashpoints.py)
) -> Pipeline:
    """gate → dedup → grace → fence → act → record → notify."""
    return Pipeline(
        [
            # May we act? Notify-only rules stop here; held windows say so once;
            # `approve` rules and data-loss plans wait for a person.
            Gate(store, journal, plans, default_plan),
            # Already rolled back (or rolling back)? Cheap exit before taking the lease.
            Dedup(store),
            # A rule's grace period: "rolling back in 60s — Hold?"; a Hold in it vetoes.
            Grace(store, journal, clock),
            # The leader's fencing token + the unique action-log claim: exactly once.
            Fence(store, coordinator, journal, crash),
            # Run the plan's steps in order, retrying transient failures.
            Act(plans, default_plan, runner, journal, clock, crash, coordinator),
            # Action log, terminal phase, journal, rollbacks counter.
            Record(store, journal, clock, metrics),
            # Tell people how it ended.
            Notify(journal),
        ]
    )
