"""The scheduler that calls the jobs (`tick()` and its kin), and stops without cutting them.

APScheduler's asyncio executor cancels every run in flight when it shuts down, and logs
each cancelled run as a job that "raised an exception", traceback and all. A clean stop
(SIGTERM from Compose, systemd or Render) would then print errors that are not errors,
and a run cut mid-way may leave its step to the next replica for no reason. So a stop
first lets no new run begin, then gives the runs in flight ``grace`` seconds to finish;
only a run still going after that is cut short, and that is said once, at warning, by
job name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[object]]


class Ticker:
    """Calls each job every ``tick`` seconds (or its own interval in ``every``), never two
    runs of one job at once; :meth:`stop` lets the runs in flight finish."""

    def __init__(
        self,
        jobs: Mapping[str, Job],
        tick: float,
        every: Mapping[str, float] | None = None,
        *,
        grace: float = 5.0,
    ) -> None:
        self._grace = grace
        self._running: dict[asyncio.Task[object], str] = {}
        self._stopping = False
        self._scheduler = AsyncIOScheduler()
        for job_id, call in jobs.items():
            self._scheduler.add_job(
                self._tracked(job_id, call),
                "interval",
                seconds=(every or {}).get(job_id, tick),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                id=job_id,
                name=job_id,
            )

    def start(self) -> None:
        """Start calling the jobs (on the running event loop)."""
        self._scheduler.start()

    @property
    def running(self) -> list[str]:
        """The jobs with a run in flight now, by name."""
        return sorted(self._running.values())

    async def stop(self) -> None:
        """No new runs; the runs in flight get ``grace`` seconds, then are cut short."""
        if self._stopping:
            return
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
        if self._running:
            await asyncio.wait(list(self._running), timeout=self._grace)
        late = self.running
        if late:
            log.warning("stopping: cut short the jobs still running", jobs=late)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)  # cancels what is still in flight

    def _tracked(self, job_id: str, call: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None  # APScheduler runs coroutine jobs as tasks
            self._running[task] = job_id
            try:
                await call()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                # cut short by stop(), which said so: not an error of the job
            finally:
                self._running.pop(task, None)

        return run
