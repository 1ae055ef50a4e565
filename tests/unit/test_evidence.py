"""A running step is not "in doubt": recovery leaves rollbacks running here alone and
asks a step's evidence (its late result, the target's version) first; the store's
clock and reachability as :class:`watchdog.ha.health.Health` sees them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes import RecordingExecutor, ScriptedSource
from tests.rules import rules
from tests.world import app_settings, opened
from watchdog.actions.plan import TIMEOUT_GRACE, StepOutcome
from watchdog.actions.spec import Plan, VerifyStep
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import FencedOut, TransientError
from watchdog.foundation.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.ha.health import Health, StoreClock
from watchdog.ha.patience import persist
from watchdog.pipeline.evidence import Evidence, Verdict

PLAN = Plan.model_validate(
    {
        "steps": [
            {"name": "deploy", "kind": "command", "argv": ["true"], "timeout": "15s"},
            {"name": "check", "kind": "verify", "url": "http://t/version"},
        ]
    }
)
WINDOW = Window(
    "w", Deployment("api", "prod", "v2", previous_version="v1"), WindowPhase.ROLLING_BACK, 0, 600, 0
)


def ev(kind: EventKind, at: float, **data: object) -> Event:
    return Event("w", at, kind, kind.value, data={"step": "deploy", **data})


@dataclass
class Journal:
    """The window's journal; ``late`` lands after ``after`` looks (a deposed leader's)."""

    events: list[Event]
    late: list[Event] = field(default_factory=list)
    after: int = 3
    looks: int = 0

    async def list_events(self, window_id: str, *, after_seq: int = 0) -> list[Event]:
        self.looks += 1
        return self.events + (self.late if self.looks > self.after else [])


def versions(ok: bool) -> tuple[list[VerifyStep], object]:
    asked: list[VerifyStep] = []

    async def check(window: Window, step: VerifyStep) -> StepOutcome:
        asked.append(step)
        said = {"output": "v1 is serving"} if ok else {"error": "v2 is serving"}
        return StepOutcome("check", "verify", 1, 1, ok, None if ok else False, **said)  # type: ignore[arg-type]

    return asked, check


async def test_a_late_result_journaled_by_a_deposed_leader_is_the_evidence() -> None:
    clock = FakeClock()
    started = clock.now()
    late = ev(EventKind.STEP_SUCCEEDED, started + 14)
    journal = Journal([ev(EventKind.STEP_STARTED, started)], late=[late])
    asked, check = versions(ok=False)
    verdict = await Evidence(journal, clock, check, wait=True).ask(WINDOW, PLAN, 0, journal.events)  # type: ignore[arg-type]
    assert verdict.done is True and "journaled" in verdict.how
    assert asked == []  # the result settled it
    assert clock.now() - started < 15  # no longer than the step could run


async def test_no_result_by_the_steps_deadline_then_the_target_version_decides() -> None:
    clock = FakeClock()
    started = clock.now()
    journal = Journal([ev(EventKind.STEP_STARTED, started)])
    asked, check = versions(ok=True)
    verdict = await Evidence(journal, clock, check, wait=True).ask(WINDOW, PLAN, 0, journal.events)  # type: ignore[arg-type]
    assert verdict.done is True and "v1 is serving" in verdict.how
    assert clock.now() >= started + 15 + TIMEOUT_GRACE  # waited out the step's own deadline
    assert [s.timeout for s in asked] == [2.0]  # one read (its poll interval), not 120 s


async def test_a_single_node_does_not_wait_and_a_wrong_version_leaves_it_in_doubt() -> None:
    clock = FakeClock()
    journal = Journal([ev(EventKind.STEP_STARTED, clock.now())])
    _, check = versions(ok=False)
    verdict = await Evidence(journal, clock, check, wait=False).ask(WINDOW, PLAN, 0, journal.events)  # type: ignore[arg-type]
    assert verdict == Verdict(None, how="the target's version: v2 is serving")
    assert clock.slept == []


async def test_a_late_permanent_failure_is_a_failure_not_a_doubt() -> None:
    clock = FakeClock()
    failed = ev(EventKind.STEP_FAILED, clock.now() + 1, transient=False, output="exit 3")
    journal = Journal([ev(EventKind.STEP_STARTED, clock.now())], late=[failed], after=0)
    verdict = await Evidence(journal, clock, None, wait=True).ask(WINDOW, PLAN, 0, journal.events)  # type: ignore[arg-type]
    assert (verdict.done, verdict.error, verdict.transient) == (False, "exit 3", False)


# --- recovery leaves a rollback running here alone --------------------------------------


async def test_a_rollback_running_here_is_not_resumed_by_a_new_lease(tmp_path: Path) -> None:
    executor = RecordingExecutor(gate=asyncio.Event())
    steps = {"steps": [{"name": "redeploy", "kind": "command", "argv": ["true"]}]}
    file = rules(tmp_path).group("g", None).prometheus("errors", "errors", above=1)
    settings = app_settings(tmp_path, file, plans={"p": steps}, default_plan="p", confirm_for=0)
    seams = {"executors": {"command": executor}, "sources": {"prometheus": ScriptedSource()}}
    async with opened(settings, clock=FakeClock(), **seams) as parts:
        d = Deployment("api", "prod", "v2", previous_version="v1")
        window = await parts.windows.open_window(d, window_seconds=600, actor="ci")
        await parts.windows.rollback(window.id, actor="api", reason="broken")  # claimed
        while not executor.calls:
            await asyncio.sleep(0)
        assert await parts.recovery.run() == 0  # the lease re-taken: still running here
        assert await parts.recovery.sweep() == 0
        assert executor.gate is not None
        executor.gate.set()
        await parts.engine.drain()
        final = await parts.store.get_window(window.id)
        assert final is not None and final.phase is WindowPhase.ROLLED_BACK
        kinds = [e.kind for e in await parts.store.list_events(window.id)]
        assert EventKind.ROLLBACK_FAILED not in kinds and EventKind.ROLLBACK_RESUMED not in kinds
    assert executor.calls == [("redeploy", window.id)]


# --- the store's clock and reachability --------------------------------------------------


@dataclass
class Store:
    skew: float = 0.0
    down: bool = False
    clock: FakeClock = field(default_factory=FakeClock)

    async def store_time(self) -> float:
        if self.down:
            raise ConnectionRefusedError("connection refused")
        return self.clock.now() + self.skew


async def test_a_replica_off_the_stores_clock_reads_the_stores_time_and_does_not_lead() -> None:
    store = Store(skew=60.0)
    clock = StoreClock(store.clock)
    health = Health(store, clock, None, max_skew=5.0)
    assert await health.probe()
    assert clock.now() == store.clock.now() + 60  # every time written is the store's
    assert health.may_lead() is not None and "60.0s off the store's" in (health.problem() or "")
    store.skew = 1.0
    await health.probe()
    assert health.may_lead() is None and health.problem() is None


async def test_a_store_outage_is_said_once_and_how_long_it_lasted() -> None:
    store, mono = Store(down=True), [100.0]
    health = Health(store, StoreClock(store.clock), None, monotonic=lambda: mono[0])
    assert not await health.probe()
    assert "the store is unreachable: ConnectionRefusedError" in (health.problem() or "")
    calls = []

    async def tick() -> None:
        calls.append(1)
        raise ConnectionRefusedError("down")

    await health.quiet(tick)  # no stack trace per tick while the outage is known
    store.down, mono[0] = False, 110.5
    assert await health.probe()
    assert health.problem() is None and health.outage_note() == (
        "the store was unreachable for 10.5s"
    )


# --- writes a rollback needs, kept through a store blip ----------------------------------


async def test_a_write_is_retried_through_a_blip_and_the_outage_is_told_once_back() -> None:
    down = TransientError("PostgreSQL store unavailable")  # the store's own word for it
    clock, failures, told = FakeClock(), [ConnectionRefusedError("down"), down] * 2, []

    async def write() -> str:
        if failures:
            raise failures.pop()
        return "written"

    async def back(away: float) -> None:
        told.append(away)

    assert await persist(clock, "x", write, back=back) == "written"
    assert told == [sum(clock.slept)] and len(clock.slept) == 4


async def test_a_refusal_is_an_answer_and_a_long_outage_propagates() -> None:
    clock = FakeClock()

    async def fenced() -> None:
        raise FencedOut(1, 2)

    with pytest.raises(FencedOut):
        await persist(clock, "x", fenced)
    assert clock.slept == []

    async def down() -> None:
        raise ConnectionRefusedError("down")

    with pytest.raises(ConnectionRefusedError):
        await persist(clock, "x", down, patience=5.0)
    assert 3.0 < sum(clock.slept) <= 5.0


async def test_a_result_the_store_never_took_is_kept_in_memory_as_evidence() -> None:
    clock = FakeClock()
    journal = Journal([ev(EventKind.STEP_STARTED, clock.now())])
    kept = {("w", "deploy"): StepOutcome("deploy", "command", 0, 1, True, None, "ok")}
    evidence = Evidence(journal, clock, None, wait=True, unrecorded=kept)  # type: ignore[arg-type]
    verdict = await evidence.ask(WINDOW, PLAN, 0, journal.events)
    assert (verdict.done, verdict.record) == (True, True) and "kept by this replica" in verdict.how
    assert clock.slept == []  # nothing to wait for: this process ran it
