"""Build the real app for tests above the pure core: Settings from a rules text, fakes
injected at the seams (:class:`watchdog.app.Seams`), nothing wired by hand.

    settings = app_settings(tmp_path, RULES, plans={...}, default_plan="default")
    async with opened(settings, clock=clock, sources={"prometheus": source}) as parts:
        await parts.windows.open_window(...)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from watchdog.app import App, Parts
from watchdog.settings import Settings


def app_settings(tmp_path: Path, rules: str, **values: Any) -> Settings:
    """Settings with ``rules`` as the only rule file and an in-memory SQLite store."""
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    values.setdefault("store_url", SecretStr("sqlite:///:memory:"))
    return Settings(rules=[path], **values)


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
