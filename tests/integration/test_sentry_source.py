"""The sentry source through httpx against a fake speaking Sentry's issues API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.servers.sentry import FakeSentry
from watchdog.evaluation.evaluate import evaluate
from watchdog.foundation.model import RuleState, SampleKind, Verdict
from watchdog.rulefile.telemetry import SentryRule
from watchdog.sources.base import SampleContext
from watchdog.sources.sentry import SentrySource

pytestmark = pytest.mark.integration
TOKEN = "sntrys-test-token-0123456789abcdef"


@pytest.fixture
async def sentry() -> AsyncIterator[FakeSentry]:
    fake = FakeSentry(token=TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


def rule(**kw: Any) -> SentryRule:
    return SentryRule.model_validate(
        {"name": "new-issues", "source": "sentry", "project": "api", **kw}
    )


def ctx(since: float, **variables: str) -> SampleContext:
    base = {
        "service": "api",
        "environment": "production",
        "version": "v2",
        "previous_version": "v1",
    }
    return SampleContext("w", {**base, **variables}, time.time(), since=since)


async def test_counts_only_new_issues_of_the_deployed_release(sentry: FakeSentry) -> None:
    opened = time.time() - 120
    sentry.add_issue(
        "api", "v1", opened - 3600, title="old bug still happening"
    )  # previous release
    sentry.add_issue("api", "v2", opened + 30, title="KeyError: 'user'")
    sentry.add_issue("api", "v2", opened + 60, title="TypeError in checkout")
    sentry.add_issue("api", "v2", opened + 70, env="staging")  # another environment
    sentry.add_issue("api", "v2", opened - 10)  # first seen before this window opened
    source = SentrySource(sentry.url, "acme", TOKEN)
    sample = await source.sample(rule(), ctx(opened))
    await source.close()
    assert sample.kind is SampleKind.VALUES and sample.series[0].value == 2.0
    assert "API-2: KeyError: 'user'" in (sample.detail or "")
    (request,) = sentry.requests
    assert request["path"] == "/api/0/projects/acme/api/issues/"
    assert request["query"]["query"] == 'is:unresolved firstRelease:"v2"'
    assert request["query"]["environment"] == "production"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert evaluate(rule(), RuleState(), sample, time.time()).state.verdict is Verdict.FIRING


async def test_no_new_issue_is_zero_and_healthy(sentry: FakeSentry) -> None:
    sentry.add_issue("api", "v1", time.time() - 7200)
    source = SentrySource(sentry.url, "acme", TOKEN)
    sample = await source.sample(rule(), ctx(time.time() - 60))
    await source.close()
    assert [s.value for s in sample.series] == [0.0]
    assert evaluate(rule(), RuleState(), sample, time.time()).state.verdict is Verdict.OK


@pytest.mark.parametrize(
    ("token", "project", "status", "fragment", "transient"),
    [
        ("wrong-token-0123456789", "api", None, "HTTP 401: Invalid token", False),
        (TOKEN, "nope", None, "HTTP 404: The requested resource does not exist", False),
        (TOKEN, "api", 502, "HTTP 502: Internal Error", True),
    ],
)
async def test_api_errors_are_inconclusive_naming_the_problem(
    sentry: FakeSentry, token: str, project: str, status: int | None, fragment: str, transient: bool
) -> None:
    sentry.add_issue("api", "v2", time.time())
    sentry.status = status
    source = SentrySource(sentry.url, "acme", token)
    sample = await source.sample(rule(project=project), ctx(time.time() - 60))
    await source.close()
    assert sample.kind is SampleKind.ERROR and fragment in (sample.error or "")
    assert sample.transient is transient
    assert (
        evaluate(rule(project=project), RuleState(), sample, time.time()).state.verdict
        is Verdict.INCONCLUSIVE
    )


async def test_sentry_down_is_inconclusive(sentry: FakeSentry) -> None:
    await sentry.stop()
    source = SentrySource(sentry.url, "acme", TOKEN, timeout=2)
    sample = await source.sample(rule(), ctx(time.time()))
    await source.close()
    assert sample.kind is SampleKind.ERROR and sample.transient
    where = sentry.url.split("://")[1].rstrip("/")
    assert sample.error == f"cannot connect to Sentry at {where}: connection refused"


async def test_a_release_with_quotes_is_quoted_in_the_search(sentry: FakeSentry) -> None:
    source = SentrySource(sentry.url, "acme", TOKEN)
    sentry.add_issue("api", "2026.11.28-1", time.time())
    sample = await source.sample(rule(), ctx(time.time() - 60, version="2026.11.28-1"))
    await source.close()
    assert sample.series[0].value == 1.0
    assert sentry.requests[0]["query"]["query"].endswith('firstRelease:"2026.11.28-1"')
