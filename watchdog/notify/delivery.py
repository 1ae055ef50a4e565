"""The delivery worker: drains the outbox, retries with backoff, reports what failed.

One task owned by the app. Each pass takes the pending notifications in order; per
(window, channel) they go out strictly in order (the Slack root message before its
updates), so one that waits for a retry holds back only its own window's later ones on
that channel. Channels deliver independently: each channel's queue is drained by a task
of its own, and a pass never waits for one that is still draining (it is skipped until
done), so a hanging Grafana or a dead webhook never delays PagerDuty or Slack.

Markers (Grafana annotations, Sentry deploys) are best-effort: each attempt has its own
small deadline (``Backoff.marker_timeout``) and they are given up after
``Backoff.marker_attempts``, so a marker never holds its queue for long.

Transient failures (refused, timeouts, 5xx, 429) wait by the one backoff rule of
:mod:`watchdog.foundation.retry` (``Retry-After`` honoured); permanent ones (other 4xx), and retries
exhausted, are marked failed and journaled as ``notify_failed``. Every attempt is counted
in ``watchdog_notifications_total{channel,result}`` (``sent``, ``retry``, ``failed``).

Replicas sharing a store each run a worker; a notification is sent by the one that
*claims* it (``Store.claim_notification``) for the send's timeout plus a margin. A row
another replica holds keeps back the rest of its (window, channel), so order holds
across replicas; a claimer that crashed or froze loses the row when its claim expires.
A worker that finds itself late (frozen after claiming) does not send at all: the
claim may have passed to another replica meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from functools import partial
from typing import Protocol

import structlog

from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Window
from watchdog.ha.patience import PATIENCE, persist
from watchdog.notify import render
from watchdog.notify.backoff import Backoff, Report, journal_report
from watchdog.notify.channel import Channel
from watchdog.plumbing.logs import about_window
from watchdog.plumbing.metrics import Metrics
from watchdog.store.base import OutboxItem, OutboxStatus, OutboxStore, WindowStore

log = structlog.get_logger("watchdog.notify.delivery")

__all__ = ["Backoff", "DeliveryWorker", "journal_report"]  # what callers import from here


class DeliveryStore(OutboxStore, WindowStore, Protocol):
    """What delivery reads and writes: the outbox rows and the windows they are about."""


CLAIM_MARGIN = 5.0
"""Seconds a claim may age before its send starts; the claim lasts timeout + 2 margins."""

BACKLOG_READ = 500
"""Pending notifications read per pass (and the most ``watchdog_outbox_pending`` counts)."""


class DeliveryWorker:
    """Sends what the outbox holds, in order per (window, channel)."""

    def __init__(
        self,
        store: DeliveryStore,
        channels: Mapping[str, Channel],
        clock: Clock,
        report: Report,
        *,
        backoff: Backoff | None = None,
        wake: asyncio.Event | None = None,
        poll: float = 1.0,
        metrics: Metrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._channels = channels
        self._clock = clock
        self._report = report
        self._backoff = backoff or Backoff()
        self._wake = wake or asyncio.Event()
        self._poll = poll
        self._metrics = metrics
        self._monotonic = monotonic
        self.identity = uuid.uuid4().hex  # the owner named on this worker's claims
        self._draining: dict[str, asyncio.Task[int]] = {}  # channel → its drain task

    async def run(self) -> None:
        """Deliver until cancelled; wakes on new notifications, when a channel's drain
        ends, or every ``poll`` seconds. Never waits for a channel to finish."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self._dispatch()
                except Exception:
                    # The store may be briefly unavailable: keep the worker alive.
                    log.exception("delivery pass failed")
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                # that lands as the wake-up does (a drain ending), and stop() hangs.
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
        finally:
            draining = list(self._draining.values())
            for task in draining:
                task.cancel()
            # Wait for them to unwind: the store closes after this, never under them.
            await asyncio.gather(*draining, return_exceptions=True)

    async def run_once(self) -> int:
        """One pass over due notifications, waiting for the drains it started; returns
        how many were delivered (for driving the worker by hand)."""
        started = await self._dispatch()
        return sum(await asyncio.gather(*started))

    async def _dispatch(self) -> list[asyncio.Task[int]]:
        """Start a drain for every channel with due items that is not draining already."""
        now = self._clock.now()
        blocked: set[tuple[str, str]] = set()
        queues: dict[str, list[OutboxItem]] = {}
        pending = await self._store.pending_notifications(limit=BACKLOG_READ)
        if self._metrics is not None:
            oldest = min((item.created_at for item in pending), default=now)
            self._metrics.outbox(len(pending), now - oldest)
        for item in pending:
            key = (item.window_id, item.channel)
            if item.channel in self._draining:
                continue  # its task still works; its queue is read again when it ends
            if key in blocked or item.due_at > now or self._held_elsewhere(item, now):
                blocked.add(key)  # later items of this window wait their turn
                continue
            queues.setdefault(item.channel, []).append(item)
        started = []
        for channel, items in queues.items():
            task = asyncio.create_task(self._drain(items), name=f"deliver {channel}")
            self._draining[channel] = task
            task.add_done_callback(partial(self._drained, channel))
            started.append(task)
        return started

    def _drained(self, channel: str, task: asyncio.Task[int]) -> None:
        self._draining.pop(channel, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("delivery to a channel failed", channel=channel, error=repr(exc))
        self._wake.set()  # what it held back may be due now

    def _held_elsewhere(self, item: OutboxItem, now: float) -> bool:
        """Another replica is sending this one (and its claim has not expired)."""
        return (
            item.claimed_by not in (None, self.identity)
            and item.claimed_until is not None
            and item.claimed_until > now
        )

    async def _claim(self, item: OutboxItem) -> bool:
        """Take the item for one send; False when another replica has it."""
        assert item.id is not None
        now = self._clock.now()
        # The claim outlives the patience of the "sent" mark (ha/patience.py): a sender
        # whose mark waits out a store outage still holds the row when the store is
        # back, so no other replica sends it again. A crashed sender costs that much delay.
        until = now + self._backoff.deadline(item.channel) + 2 * CLAIM_MARGIN + PATIENCE
        return await self._store.claim_notification(
            item.id, owner=self.identity, now=now, until=until
        )

    async def _drain(self, items: list[OutboxItem]) -> int:
        failed: set[str] = set()
        sent = 0
        for item in items:
            if item.window_id in failed:
                continue
            if await self._attempt(item):
                sent += 1
            else:
                failed.add(item.window_id)
        return sent

    async def _attempt(self, item: OutboxItem) -> bool:
        claimed_at = self._monotonic()
        if not await self._claim(item):
            return False  # another replica sends it (and what follows it)
        window = await self._store.get_window(item.window_id)
        channel = self._channels.get(item.channel)
        if window is None or channel is None:
            self._count(item, "failed")
            await self._mark(item, OutboxStatus.FAILED, "window or channel no longer exists")
            return False
        d = window.deployment
        with about_window(window.id, d.service, d.version):
            return await self._send(item, window, channel, claimed_at)

    async def _send(
        self, item: OutboxItem, window: Window, channel: Channel, claimed_at: float
    ) -> bool:
        event = render.event_from_json(json.loads(item.payload))
        if self._monotonic() - claimed_at > CLAIM_MARGIN:
            # Frozen or starved since the claim: it may have expired and passed to
            # another replica, so sending now could send twice. The claim will lapse.
            log.warning("claim too old to send on", channel=item.channel, item=item.id)
            return False
        try:
            async with asyncio.timeout(self._backoff.deadline(item.channel)):
                await channel.deliver(event, window)
        except (TransientError, TimeoutError) as exc:
            await self._retry(item, window, exc)
            return False
        except PermanentError as exc:
            await self._give_up(item, window, str(exc))
            return False
        except Exception as exc:
            # A bug in a channel must not loop forever: give up and say so.
            log.exception("channel raised", channel=item.channel)
            await self._give_up(item, window, f"{type(exc).__name__}: {exc}")
            return False
        self._count(item, "sent")
        await self._mark(item, OutboxStatus.SENT, None)
        return True

    def _count(self, item: OutboxItem, result: str) -> None:
        if self._metrics is not None:
            self._metrics.notification(item.channel, result)

    async def _retry(self, item: OutboxItem, window: Window, exc: Exception) -> None:
        attempts = item.attempts + 1
        error = str(exc) or f"timed out after {self._backoff.deadline(item.channel):g}s"
        if attempts >= self._backoff.attempts(item.channel):
            await self._give_up(item, window, f"gave up after {attempts} attempts: {error}")
            return
        self._count(item, "retry")
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        due = self._clock.now() + self._backoff.delay(attempts, retry_after)
        # Once per notification at info; each later retry at debug (they follow the
        # backoff; watchdog_outbox_oldest_pending_seconds alerts when it drags on).
        say = log.info if attempts == 1 else log.debug
        say("delivery will be retried", channel=item.channel, attempts=attempts, error=error)
        await self._store.update_notification(
            item.id or 0, status=OutboxStatus.PENDING, attempts=attempts, due_at=due, error=error
        )

    async def _give_up(self, item: OutboxItem, window: Window, error: str) -> None:
        log.warning("delivery failed permanently", channel=item.channel, error=error)
        self._count(item, "failed")
        await self._mark(item, OutboxStatus.FAILED, error)
        await self._report(window, item, error)

    async def _mark(self, item: OutboxItem, status: OutboxStatus, error: str | None) -> None:
        # Sent is a fact the store must learn, through a blip too: lost, the row would be
        # sent again once the store is back (ha/patience.py).
        await persist(
            self._clock,
            "a notification's delivery",
            lambda: self._store.update_notification(
                item.id or 0,
                status=status,
                attempts=item.attempts + 1,
                due_at=item.due_at,
                error=error,
            ),
        )
