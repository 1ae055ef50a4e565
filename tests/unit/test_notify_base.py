from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from watchdog.logs import configure_logging
from watchdog.model import Deployment, Event, EventKind, Window, WindowPhase
from watchdog.notify import FanoutNotifier, LogNotifier, NoopNotifier, Notifier


def window() -> Window:
    deployment = Deployment(service="api", environment="prod", version="v2", previous_version="v1")
    return Window("win42", deployment, WindowPhase.WATCHING, 0.0, 1800.0, 0.0)


EVENT = Event("win42", 10.0, EventKind.RULE_FIRING, "5xx ratio 0.2 above 5%", rule="http-5xx")


class Recording:
    def __init__(self) -> None:
        self.seen: list[tuple[Event, Window]] = []

    async def notify(self, event: Event, window: Window) -> None:
        self.seen.append((event, window))


class Exploding:
    async def notify(self, event: Event, window: Window) -> None:
        raise RuntimeError("slack is down")


class Hanging:
    def __init__(self) -> None:
        self.cancelled = False

    async def notify(self, event: Event, window: Window) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in entries if str(e.get("logger", "")).startswith("watchdog")]


async def test_fanout_calls_every_notifier() -> None:
    a, b = Recording(), Recording()
    w = window()
    await FanoutNotifier([a, b]).notify(EVENT, w)
    assert a.seen == [(EVENT, w)] and b.seen == [(EVENT, w)]


async def test_one_failure_does_not_stop_others_nor_raise(logs: io.StringIO) -> None:
    before, after = Recording(), Recording()
    await FanoutNotifier([before, Exploding(), after]).notify(EVENT, window())
    assert len(before.seen) == 1 and len(after.seen) == 1
    (failure,) = [entry for entry in lines(logs) if entry["event"] == "notifier failed"]
    assert failure["notifier"] == "Exploding"
    assert "slack is down" in str(failure["exception"])


async def test_hanging_notifier_is_cut_by_the_timeout(logs: io.StringIO) -> None:
    hanging, other = Hanging(), Recording()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await FanoutNotifier([hanging, other], timeout=0.05).notify(EVENT, window())
    assert loop.time() - started < 1.0
    assert hanging.cancelled and len(other.seen) == 1
    (warning,) = [entry for entry in lines(logs) if entry["event"] == "notifier timed out"]
    assert warning["notifier"] == "Hanging" and warning["level"] == "warning"


async def test_empty_fanout_and_noop() -> None:
    await FanoutNotifier([]).notify(EVENT, window())
    await NoopNotifier().notify(EVENT, window())


async def test_log_notifier_logs_the_event(logs: io.StringIO) -> None:
    await LogNotifier().notify(EVENT, window())
    (entry,) = lines(logs)
    assert entry["event"] == "notification"
    assert entry["window"] == "win42" and entry["service"] == "api"
    assert entry["version"] == "v2" and entry["kind"] == "rule_firing"
    assert entry["message"] == "5xx ratio 0.2 above 5%"


def test_implementations_satisfy_the_protocol() -> None:
    notifiers: list[Notifier] = [NoopNotifier(), LogNotifier(), FanoutNotifier([])]
    assert len(notifiers) == 3
