"""What recovery asks before calling a step "in doubt".

A step whose intent is journaled but whose outcome is not may still be running in
another process: a leader deposed by a Redis hiccup or a paused link keeps running the
command it started, and journals its result when it returns. So recovery asks the
step's own evidence, in order:

0. **its result, kept in memory** by this process when the store was away as it came;
1. **its result, journaled by whoever ran it**: waited for until the step's own deadline
   (its ``timeout`` plus the runner's grace, from the journaled intent) when another
   process may be running it (``wait``: replicas share the store, and the intent was
   written by another process; a single node's predecessor is dead);
2. **the target's version**: when the plan has a ``verify`` step, one read of it; the
   previous version serving means the step took effect;
3. otherwise the step is in doubt, and only a step safe to repeat is run again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from watchdog.actions.plan import TIMEOUT_GRACE, StepOutcome
from watchdog.actions.spec import Plan, VerifyStep
from watchdog.foundation.clock import Clock
from watchdog.foundation.model import Event, EventKind, Window
from watchdog.ha.inflight import INSTANCE
from watchdog.store.base import EventStore

log = structlog.get_logger("watchdog.ha.evidence")

POLL = 0.25
"""Seconds between looks at the journal while waiting for a running step's result."""

CheckVersion = Callable[[Window, VerifyStep], Awaitable[StepOutcome]]
"""Runs a ``verify`` step once (:meth:`watchdog.pipeline.act.Act.check`)."""

Unrecorded = Mapping[tuple[str, str], StepOutcome]
"""Results this process got but the store never took, by (window, step) (``Act``)."""


@dataclass(frozen=True)
class Verdict:
    """What the evidence says about a step in doubt."""

    done: bool | None  # True: it took effect; False: it failed; None: nobody can say
    how: str = ""  # where the answer came from, for the journal
    record: bool = False  # not in the journal yet: recovery journals it
    error: str | None = None
    transient: bool = False  # a failure that trying again could help


UNKNOWN = Verdict(None)


class Evidence:
    """Asks a step's evidence (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        clock: Clock,
        check: CheckVersion | None,
        *,
        wait: bool,
        unrecorded: Unrecorded | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._check = check
        self._wait = wait
        self._unrecorded = unrecorded if unrecorded is not None else {}

    async def ask(self, window: Window, plan: Plan, index: int, events: Sequence[Event]) -> Verdict:
        """The verdict on ``plan.steps[index]``, whose intent is the last thing journaled."""
        step = plan.steps[index]
        kept = self._unrecorded.get((window.id, step.name))
        if kept is not None:  # we ran it; the store was away when it returned
            how = "its result, kept by this replica while the store was away"
            transient = bool(kept.transient)
            return Verdict(kept.ok, how, error=kept.error, transient=transient, record=kept.ok)
        intent = _intent(events, step.name)
        # Another process may still be running it; this one is not (recovery skips what
        # runs here), so its own intent has no result to wait for.
        if self._wait and intent is not None and intent.data.get("by") != INSTANCE:
            started = intent.at
            verdict = await self._journaled(window, step.name, started + step.timeout)
            if verdict.done is not None:
                return verdict
        return await self._version(window, plan, index)

    async def _journaled(self, window: Window, name: str, until: float) -> Verdict:
        deadline = until + TIMEOUT_GRACE
        while True:
            verdict = _result(await self._store.list_events(window.id), name)
            if verdict.done is not None or self._clock.now() >= deadline:
                return verdict
            log.info("a step's result may still come: waiting for it", window=window.id, step=name)
            await self._clock.sleep(min(POLL, max(0.0, deadline - self._clock.now())))

    async def _version(self, window: Window, plan: Plan, index: int) -> Verdict:
        verify = next((s for s in plan.steps[index:] if isinstance(s, VerifyStep)), None)
        if verify is None or self._check is None:
            return UNKNOWN
        once = verify.model_copy(update={"timeout": verify.poll_interval, "retries": 0})
        outcome = await self._check(window, once)
        if outcome.ok:
            return Verdict(True, how=f"the target's version: {outcome.output}", record=True)
        return Verdict(None, how=f"the target's version: {outcome.error}")


def _intent(events: Sequence[Event], name: str) -> Event | None:
    kind = EventKind.STEP_STARTED
    starts = [e for e in events if e.kind is kind and e.data.get("step") == name]
    return starts[-1] if starts else None


def _result(events: Sequence[Event], name: str) -> Verdict:
    last: Event | None = None
    for event in events:
        if event.data.get("step") == name and event.kind in _RESULTS | {EventKind.STEP_STARTED}:
            last = event
    if last is None or last.kind is EventKind.STEP_STARTED:
        return UNKNOWN
    if last.kind is EventKind.STEP_SUCCEEDED:
        return Verdict(True, how="its result, journaled by the replica that ran it")
    error = str(last.data.get("output") or last.message)
    return Verdict(False, how="its result", error=error, transient=bool(last.data.get("transient")))


_RESULTS = {EventKind.STEP_SUCCEEDED, EventKind.STEP_FAILED}
