"""Reading the serving version from a Prometheus info metric's label, against a real
Prometheus (``label_replace`` builds ``build_info``-style series), and the ``verify``
step built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from examples.stack import PromStack
from watchdog.actions.base import ActionContext
from watchdog.actions.spec import VerifyStep
from watchdog.actions.verify import VerifyExecutor
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Window, WindowPhase
from watchdog.sources.versions import VersionProbe, VersionReader

pytestmark = pytest.mark.integration

ONE = 'label_replace(vector(1), "version", "v1.4.2", "", "")'
TWO = f'{ONE} or label_replace(vector(2), "version", "v1.5.0", "", "")'


@pytest.fixture
async def reader(prom_stack: PromStack) -> AsyncIterator[VersionReader]:
    async with httpx.AsyncClient() as client:
        yield VersionReader(client, prom_stack.prom_url)


def ctx(previous: str) -> ActionContext:
    deployment = Deployment("api", "prod", "v1.5.0", previous)
    return ActionContext(
        Window("w", deployment, WindowPhase.ROLLING_BACK, 0, 1, 0), deployment.template_vars()
    )


async def test_label_of_the_single_series(reader: VersionReader) -> None:
    assert await reader.read(VersionProbe(query=ONE), {}) == "v1.4.2"


async def test_two_versions_serving_is_not_settled(reader: VersionReader) -> None:
    with pytest.raises(TransientError, match=r"several versions serving: v1\.4\.2, v1\.5\.0"):
        await reader.read(VersionProbe(query=TWO), {})


async def test_no_series_with_the_label(reader: VersionReader) -> None:
    with pytest.raises(TransientError, match="no series with label 'version'"):
        await reader.read(VersionProbe(query="vector(1)"), {})


async def test_verify_step_passes_when_previous_version_serves(reader: VersionReader) -> None:
    step = VerifyStep.model_validate({"kind": "verify", "name": "v", "query": ONE})
    result = await VerifyExecutor(reader, FakeClock()).run(step, ctx("v1.4.2"))
    assert result.data == {"version": "v1.4.2"}


async def test_verify_step_fails_naming_what_serves(reader: VersionReader) -> None:
    clock = FakeClock()
    start = clock.now()
    step = VerifyStep.model_validate(
        {"kind": "verify", "name": "v", "query": ONE, "timeout": "10s", "poll_interval": "2s"}
    )
    with pytest.raises(PermanentError, match=r"expected v1.4.1 after 10s, but v1.4.2 is serving"):
        await VerifyExecutor(reader, clock).run(step, ctx("v1.4.1"))
    assert clock.now() - start == 8.0  # polled at 0, 2, 4, 6, 8 on the fake clock
