"""Build the real app for tests above the pure core: Settings from a rule file, fakes
injected at the seams (:class:`watchdog.app.Seams`), nothing wired by hand.

    settings = app_settings(tmp_path, rules(tmp_path).prometheus(...), plans={...})
    async with World.of(settings) as world:          # opened: fake clock, scripted source
        w = await world.windows.open_window(...)
        await world.run_for(60)

    settings = served(tmp_path, rules(tmp_path)..., token=TOKEN)   # listens, file store
    async with started(settings, transport=...) as app:            # started, scheduled
        response = await api(app, "GET", "/api/v1/deployments", token=TOKEN)

``starting()`` starts several apps and stops them all; ``config_file()`` writes the
settings file of a watchdog process; ``until()`` polls for what a real clock brings.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import SecretStr

from tests.fakes import RecordingExecutor, ScriptedSource
from tests.rules import Rules
from tests.servers.common import HANG_GUARD
from watchdog.app import App, Parts
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.model import Event, EventKind, Window, WindowPhase
from watchdog.lifecycle.engine import Engine
from watchdog.lifecycle.windows import WindowService
from watchdog.settings import Settings
from watchdog.store.base import Store


def app_settings(tmp_path: Path, rules: str | Rules, **values: Any) -> Settings:
    """Settings with ``rules`` (a builder, or a YAML text written to ``rules.yml``) as the
    only rule file and an in-memory SQLite store."""
    if isinstance(rules, Rules):
        path = rules.write()
    else:
        path = tmp_path / "rules.yml"
        path.write_text(rules)
    values.setdefault("store_url", SecretStr("sqlite:///:memory:"))
    return Settings(rules=[path], **values)


def served(tmp_path: Path, rules: Path | Rules, *, token: str, **values: Any) -> Settings:
    """Settings for an app that listens (loopback, a free port, ``token`` for the API),
    its store a SQLite file in ``tmp_path`` unless ``values`` name one."""
    path = rules.write() if isinstance(rules, Rules) else rules
    values.setdefault("store_url", SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"))
    return Settings(rules=[path], listen_port=0, api_token=SecretStr(token), **values)


def config_file(home: Path, rules: Path | Rules, **settings: Any) -> Path:
    """``home/config.yml`` for a watchdog process (``WATCHDOG_CONFIG``): ``settings`` as
    the file spells them, after the rule file's path."""
    home.mkdir(parents=True, exist_ok=True)
    path = rules.write() if isinstance(rules, Rules) else rules
    config = home / "config.yml"
    config.write_text(json.dumps({"rules": [str(path)], **settings}))  # JSON is YAML
    return config


def paging(pagerduty_url: str, **notify: Any) -> dict[str, Any]:
    """The ``notify`` settings that page a fake PagerDuty, polling the outbox often."""
    key = "pd-routing-key-0123456789"
    return {"pagerduty_routing_key": key, "pagerduty_url": pagerduty_url, "poll": "200ms"} | notify


def no_network(request: httpx.Request) -> httpx.Response:
    """The default transport: a test that did not script HTTP gets a refused connection."""
    raise httpx.ConnectError(f"no network in this test: {request.url}", request=request)


@asynccontextmanager
async def opened(settings: Settings, **seams: Any) -> AsyncIterator[Parts]:
    """The app built through :meth:`App.build` with ``seams``, its store open; stopped after.

    Outbound HTTP goes to ``seams["transport"]``, by default :func:`no_network`.
    """
    seams.setdefault("transport", httpx.MockTransport(no_network))
    app = App.build(settings, **seams)
    try:
        yield await app.open()
    finally:
        await app.stop()


@asynccontextmanager
async def started(settings: Settings, *, schedule: bool = True, **seams: Any) -> AsyncIterator[App]:
    """The app built through :meth:`App.build` with ``seams`` (real outbound HTTP unless a
    ``transport`` is given), started (listening; ticking unless ``schedule`` is False);
    stopped after."""
    app = App.build(settings, **seams)
    try:
        await app.start(schedule=schedule)
        yield app
    finally:
        await app.stop()


async def api(
    app: App | str, method: str, path: str, *, token: str, timeout: float = 10, **kw: Any
) -> httpx.Response:
    """One request to the app's API (an App, or its URL) with ``token`` as the bearer."""
    url = app if isinstance(app, str) else app.url
    headers = {"Authorization": f"Bearer {token}"} | kw.pop("headers", {})
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        return await client.request(method, path, headers=headers, **kw)


@asynccontextmanager
async def starting() -> AsyncIterator[Callable[..., Awaitable[App]]]:
    """``await start(settings, **seams)`` starts an app (:func:`started`) as often as a
    test needs; every one is stopped after, the last started first."""
    async with AsyncExitStack() as stack:

        async def start(settings: Settings, **seams: Any) -> App:
            return await stack.enter_async_context(started(settings, **seams))

        yield start


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = HANG_GUARD) -> Any:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return result


@dataclass
class World:
    """The app opened with a fake clock and fakes at the seams; the test drives time."""

    clock: FakeClock
    source: ScriptedSource  # answers Prometheus rules, unless seams["sources"] say otherwise
    executor: RecordingExecutor
    parts: Parts
    settings: Settings
    seams: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.parts.engine

    @property
    def windows(self) -> WindowService:
        return self.parts.windows

    @property
    def store(self) -> Store:
        return self.parts.store

    async def run_for(self, seconds: float, step: float = 5.0) -> None:
        """Tick, let the pipeline finish, advance the clock by ``step``; for ``seconds``."""
        elapsed = 0.0
        while elapsed < seconds:
            await self.engine.tick()
            await self.engine.drain()
            self.clock.advance(step)
            elapsed += step

    async def run_until(self, window: Window, phase: WindowPhase, limit: float = 600) -> float:
        """Tick until the window reaches ``phase``; returns the clock then."""
        for _ in range(int(limit / 5)):
            if await self.phase(window) is phase:
                return self.clock.now()
            await self.run_for(5)
        raise AssertionError(f"{window.id} never reached {phase}: {await self.phase(window)}")

    async def phase(self, window: Window) -> WindowPhase:
        got = await self.store.get_window(window.id)
        assert got is not None
        return got.phase

    async def events(self, window: Window, kind: EventKind) -> list[Event]:
        return [e for e in await self.store.list_events(window.id) if e.kind is kind]

    async def kinds(self, window: Window) -> list[EventKind]:
        return [e.kind for e in await self.store.list_events(window.id)]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.parts.registry.get_sample_value(name, labels)

    def restart(self) -> AbstractAsyncContextManager[Parts]:
        """A second app on the same settings, clock and store (a restart, or a replica)."""
        return opened(self.settings, clock=self.clock, store=self.store, **self.seams)

    @classmethod
    @asynccontextmanager
    async def of(
        cls,
        settings: Settings,
        *,
        clock: FakeClock | None = None,
        source: ScriptedSource | None = None,
        executor: RecordingExecutor | None = None,
        **seams: Any,
    ) -> AsyncIterator[Self]:
        """The app opened (:func:`opened`) with ``source`` answering Prometheus rules and
        ``executor`` running ``command`` steps, unless ``seams`` say otherwise. A test's
        subclass (with its own helpers) is built the same way."""
        clock = clock or FakeClock()
        source = source or ScriptedSource()
        executor = executor or RecordingExecutor()
        seams.setdefault("sources", {"prometheus": source})
        seams.setdefault("executors", {"command": executor})
        async with opened(settings, clock=clock, **seams) as parts:
            yield cls(clock, source, executor, parts, settings, seams)


def world_of(settings: Settings, **seams: Any) -> AbstractAsyncContextManager[World]:
    """:meth:`World.of`: the app opened with a fake clock and fakes at the seams."""
    return World.of(settings, **seams)
