"""The ``render`` executor against a local fake of Render's API (its wire format), with
the real httpx client and a fake clock for the polling (nothing sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.servers.render import API_KEY, FakeRender, running_fake_render
from watchdog.actions.base import ActionContext
from watchdog.actions.plan import PlanRunner
from watchdog.actions.render import RenderExecutor
from watchdog.actions.spec import Plan, RenderStep
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import Deployment, Window, WindowPhase

pytestmark = pytest.mark.integration


def ctx() -> ActionContext:
    deployment = Deployment("api", "prod", "c3", "c2", labels={"render": "srv-api"})
    window = Window("w1", deployment, WindowPhase.ROLLING_BACK, 0.0, 1800.0, 0.0)
    return ActionContext(window, deployment.template_vars())


def step(**kw: object) -> RenderStep:
    body = {
        "kind": "render",
        "name": "render",
        "service_id": "{{ labels.render }}",
        "poll_interval": "5s",
        **kw,
    }
    return RenderStep.model_validate(body)


@pytest.fixture
async def fake() -> AsyncIterator[FakeRender]:
    async with running_fake_render() as fake:
        fake.add_service(
            "srv-api",
            ("live", "c3"),
            ("deactivated", "c2"),
            ("build_failed", "c2b"),
            ("deactivated", "c1"),
        )
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def executor(
    fake: FakeRender, client: httpx.AsyncClient, clock: FakeClock, key: str | None = API_KEY
) -> RenderExecutor:
    return RenderExecutor(client, fake.url, key, clock)


async def test_rolls_back_to_previous_live_deploy_and_follows_it(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    started = clock.now()
    result = await executor(fake, client, clock).run(step(), ctx())
    assert fake.calls("PATCH") == [("/v1/services/srv-api", {"autoDeploy": "no"})]
    assert fake.calls("POST") == [("/v1/services/srv-api/rollback", {"deployId": "dep-srv-api-1"})]
    new = fake.deploys["srv-api"][0]
    assert new["trigger"] == "rollback" and new["status"] == "live" and new["commit"]["id"] == "c2"
    assert result.data == {"deploy_id": new["id"], "status": "live"}
    assert [p for p, _ in fake.calls("GET")].count(f"/v1/services/srv-api/deploys/{new['id']}") == 2
    assert clock.now() - started == 10.0  # two polls, 5 s apart, on the fake clock
    # the order matters: auto-deploy off before the rollback, so a push cannot race it
    methods = [m for m, _, _ in fake.requests]
    assert methods.index("PATCH") < methods.index("POST")


async def test_explicit_deploy_id_and_auto_deploy_kept(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    await executor(fake, client, FakeClock()).run(
        step(deploy_id="dep-srv-api-3", disable_auto_deploy=False), ctx()
    )
    assert fake.calls("PATCH") == []
    assert fake.calls("POST") == [("/v1/services/srv-api/rollback", {"deployId": "dep-srv-api-3"})]
    assert fake.services["srv-api"]["autoDeploy"] == "yes"


async def test_failed_rollback_deploy_is_permanent(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    fake.final_status = "update_failed"
    with pytest.raises(PermanentError, match=r"ended update_failed"):
        await executor(fake, client, FakeClock()).run(step(), ctx())


async def test_deploy_that_never_settles_fails_without_second_rollback(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    fake.polls_to_settle = 10_000
    with pytest.raises(PermanentError, match=r"still update_in_progress after 60s"):
        await executor(fake, client, FakeClock()).run(step(timeout="60s"), ctx())
    assert len(fake.calls("POST")) == 1


async def test_transient_5xx_retried_by_the_runner_and_no_double_rollback(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    runner = PlanRunner({"render": executor(fake, client, clock)}, clock)
    plan = Plan.model_validate({"steps": [step(backoff="1s").model_dump(by_alias=True)]})
    fake.fail_next = [503]  # the PATCH fails once
    outcome = await runner.run(plan, ctx(), _ignore)
    assert outcome.ok, outcome
    assert [s.attempt for s in outcome.steps] == [2]
    assert len(fake.calls("POST")) == 1


async def test_retry_after_rollback_started_follows_it_instead_of_rolling_back_again(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    ex = executor(fake, client, FakeClock())
    fake.polls_to_settle = 10_000
    with pytest.raises(PermanentError):
        await ex.run(step(timeout="20s"), ctx())
    fake.polls_to_settle = 1
    await ex.run(step(), ctx())
    assert len(fake.calls("POST")) == 1
    assert fake.deploys["srv-api"][0]["status"] == "live"


async def test_wrong_key_is_permanent_and_says_401(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match="401"):
        await executor(fake, client, FakeClock(), key="wrong-key-123456").run(step(), ctx())
    assert fake.calls("POST") == []


async def test_no_key_configured_is_permanent_without_a_request(
    fake: FakeRender, client: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentError, match="WATCHDOG_RENDER_API_KEY"):
        await executor(fake, client, FakeClock(), key=None).run(step(), ctx())
    assert fake.requests == []


async def test_nothing_to_roll_back_to(client: httpx.AsyncClient) -> None:
    async with running_fake_render() as fake:
        fake.add_service("srv-api", ("live", "c1"), ("build_failed", "c0"))
        with pytest.raises(PermanentError, match="no earlier successful deploy"):
            await executor(fake, client, FakeClock()).run(step(), ctx())
        assert fake.calls("POST") == []


async def _ignore(_: object) -> None:
    return None
