"""Issue 25 M4 re-run: every outbound client against a hostile upstream on loopback.

Each source, channel, marker and executor (the calls of ``bench/hostile_upstreams.py``,
which measures RSS and stalls) is pointed at :class:`HostileUpstream`
answering a 512 MiB gzip bomb, a 300 MiB body, a 500 with 50 MiB of JSON, or JSON
nested 100,000 deep. The bound users care about: the call ends with an answer or a
clear error (never a traceback), Python memory grows by at most the cap (traced
peak, < 50 MB), and the upstream was not read to the end (reading stopped at the cap).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.hostile_upstreams import CALLS, TOKEN
from tests.rules import rules
from tests.servers.hostile import MIB, HostileUpstream
from tests.world import app_settings, opened
from watchdog.foundation.errors import WatchdogError
from watchdog.foundation.model import Sample, SampleKind
from watchdog.plumbing import httpedge

pytestmark = pytest.mark.integration

BOUND = 50 * MIB
Call = Callable[[httpx.AsyncClient, str], Awaitable[Any]]


@pytest.fixture
async def upstream() -> AsyncIterator[HostileUpstream]:
    server = HostileUpstream()
    await server.start()
    yield server
    await server.stop()


async def _measured(call: Call, url: str) -> tuple[Any, int]:
    """The call's result (or its WatchdogError) and the traced Python memory peak."""
    async with httpx.AsyncClient() as client:
        tracemalloc.start()
        try:
            result: Any = await call(client, url)
        except WatchdogError as exc:
            result = exc
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    return result, peak


def _refused_or_bounded(result: Any) -> None:
    """A failed sample, a WatchdogError, or an answer from the head: never a crash."""
    if isinstance(result, Sample):
        assert result.kind is SampleKind.ERROR or (result.series and result.series[0].value == 1)


@pytest.mark.parametrize("mode", ["bomb", "huge", "error"])
@pytest.mark.parametrize("name", list(CALLS))
async def test_a_hostile_answer_is_bounded(upstream: HostileUpstream, name: str, mode: str) -> None:
    upstream.mode = mode
    result, peak = await _measured(CALLS[name], upstream.url)
    _refused_or_bounded(result)
    assert peak < BOUND, f"{name} held {peak / MIB:.0f} MiB reading a {mode}"
    if mode != "bomb":  # the bomb's 0.5 MB fit in the socket buffers anyway
        full = {"huge": 300 * MIB, "error": 50 * MIB}[mode]
        assert all(sent < full for sent in upstream.sent), "read to the end"


@pytest.mark.parametrize("name", ["sentry", "loki", "version read", "render step", "http probe"])
async def test_deeply_nested_json_is_a_clear_error(upstream: HostileUpstream, name: str) -> None:
    upstream.mode = "deep"
    result, _ = await _measured(CALLS[name], upstream.url)
    text = (result.error or result.detail) if isinstance(result, Sample) else str(result)
    assert "nested deeper than 64 levels" in (text or "")


@pytest.mark.parametrize("name", ["sentry", "loki", "grafana", "render step"])
async def test_an_upstream_echoing_the_token_puts_it_nowhere(
    tmp_path: Path, upstream: HostileUpstream, name: str
) -> None:
    """Issue 25 low: an error body quoting the request's token reached the journal, the
    status page, Slack and the webhook. The app's edge masks every configured secret."""
    upstream.mode = "echo"
    settings = app_settings(
        tmp_path,
        rules(tmp_path).group("api", None).rule("new-issues", "sentry", project="api"),
        sentry_org="acme",
        sentry_token=TOKEN,
    )
    try:
        async with opened(settings), httpx.AsyncClient() as client:  # the app installs its
            try:  # secrets in the edge's scrubber
                result: Any = await CALLS[name](client, upstream.url)
            except WatchdogError as exc:
                result = exc
    finally:
        httpedge.set_scrubber(str)
    text = (result.error or "") if isinstance(result, Sample) else str(result)
    assert "401" in text and "not valid for /" in text and TOKEN not in text
