"""Issue 25's low findings that are behaviour of the windows and the app, one test each
(others sit beside their modules: FIFOs in test_rulefile/test_log_source, nested JSON in
test_httpedge, credentials in URLs in test_secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.rules import rules
from tests.world import app_settings, opened
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import Refused
from watchdog.foundation.model import Deployment, EventKind, WindowPhase
from watchdog.process import startup_warnings
from watchdog.settings import Settings


async def test_shadow_cannot_disarm_a_pending_rollback_without_force(tmp_path: Path) -> None:
    """Re-posting a deployment with ``shadow: true`` superseded the window whose rollback
    was announced ("rolling back in 60s"), so nothing rolled back. Now it is refused,
    naming the window, unless ``force``."""
    clock = FakeClock()
    async with opened(
        app_settings(
            tmp_path,
            rules(tmp_path).group("api", None).http("health", "http://api.internal/health"),
        ),
        clock=clock,
    ) as parts:
        d = Deployment("api", "prod", "v2", "v1")
        armed = await parts.windows.open_window(d, window_seconds=None, actor="ci")
        await parts.windows.open_window(d, window_seconds=None, actor="ci", shadow=True)
        # nothing pending yet: a shadow re-post is fine (it supersedes the first)
        again = (await parts.store.list_windows(phases=[WindowPhase.WATCHING]))[0]
        armed = await parts.windows.open_window(d, window_seconds=None, actor="ci")
        assert armed.id != again.id
        await parts.journal.record(
            armed, EventKind.ROLLBACK_SCHEDULED, "health fired: rolling back in 60s",
            at=clock.now(), data={"grace": 60},
        )  # fmt: skip
        with pytest.raises(Refused, match=f"rollback pending in window {armed.id}") as info:
            await parts.windows.open_window(d, window_seconds=None, actor="ci", shadow=True)
        assert info.value.field == "shadow"
        assert (await parts.store.get_window(armed.id)).phase is WindowPhase.WATCHING  # type: ignore[union-attr]
        forced = await parts.windows.open_window(
            d, window_seconds=None, actor="ci", shadow=True, force=True
        )
        assert forced.shadow


def test_a_dotenv_and_world_readable_secrets_are_warned_about(tmp_path: Path) -> None:
    """A ``.env`` in the working directory silently overrode the WATCHDOG_CONFIG file;
    world-readable settings or store files got no warning."""
    config = tmp_path / "watchdog.yml"
    config.write_text("api_token: x\n")
    config.chmod(0o644)
    store = tmp_path / "wd.db"
    store.write_bytes(b"")
    store.chmod(0o600)
    settings = Settings(store_url=SecretStr(f"sqlite:///{store}"))
    assert startup_warnings(settings, tmp_path, str(config)) == [
        f"{config} is readable by every user: it holds secrets (chmod o-r)"
    ]
    (tmp_path / ".env").write_text("WATCHDOG_LOG_LEVEL=debug\n")
    (tmp_path / ".env").chmod(0o600)
    config.chmod(0o600)
    assert startup_warnings(settings, tmp_path, str(config)) == [
        f"{tmp_path / '.env'} is read and its WATCHDOG_* values take precedence over the "
        f"values of {config}"
    ]
