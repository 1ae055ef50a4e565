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

from pydantic import SecretStr

from watchdog.app import App, Parts
from watchdog.settings import Settings


def app_settings(tmp_path: Path, rules: str, **values: Any) -> Settings:
    """Settings with ``rules`` as the only rule file and an in-memory SQLite store."""
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    values.setdefault("store_url", SecretStr("sqlite:///:memory:"))
    return Settings(rules=[path], **values)


@asynccontextmanager
async def opened(settings: Settings, **seams: Any) -> AsyncIterator[Parts]:
    """The app built through :meth:`App.build` with ``seams``, its store open; stopped after."""
    app = App.build(settings, **seams)
    try:
        yield await app.open()
    finally:
        await app.stop()
