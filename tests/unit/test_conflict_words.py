"""A refused action (409) says what to do instead, through the real WindowService."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rules import rules
from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import Conflict
from watchdog.foundation.model import Deployment


class Silent:
    """A source never asked (nothing is ticked)."""

    async def close(self) -> None:
        return None


async def test_acting_on_an_ended_or_held_window_says_what_to_do(tmp_path: Path) -> None:
    settings = app_settings(
        tmp_path, rules(tmp_path).group("g", None).prometheus("errors", "errors", above=1)
    )
    async with opened(settings, clock=FakeClock(), sources={"prometheus": Silent()}) as parts:
        deploy = Deployment("api", "production", "v2", previous_version="v1")
        held = await parts.windows.open_window(deploy, window_seconds=60, actor="t")
        await parts.windows.hold(held.id, actor="t", reason=None)
        with pytest.raises(Conflict) as again:
            await parts.windows.hold(held.id, actor="t", reason=None)
        await parts.windows.abort(held.id, actor="t", reason=None)
        with pytest.raises(Conflict) as ended:
            await parts.windows.rollback(held.id, actor="t", reason=None)
    assert str(again.value) == (
        f"window {held.id} is held: cannot hold; "
        f"it is held: `watchdog deploy resume {held.id}` lets the rules act again"
    )
    assert str(ended.value) == (
        f"window {held.id} is aborted: cannot roll back; it has ended: "
        f"`watchdog deploy status {held.id}` shows why; roll back with your deploy tool, "
        "or `watchdog deploy start` watches a new deploy"
    )
