"""The on-call flow end to end: the real App on a real clock, the watchdog's Slack Web API client
pointed at a local fake Slack Web API, PagerDuty's Events API faked locally, a target
service whose /health we break and whose /rollback counts calls, and signed Slack
button clicks sent to the App's /slack/interactions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from tests.fakes import serve
from tests.rules import rules
from tests.servers.common import HANG_GUARD
from tests.servers.pagerduty import FakePagerDuty
from tests.servers.slack import FakeSlack, Message, button_ids, interaction, signed_headers
from watchdog.app import App
from watchdog.foundation.model import Deployment, Event, EventKind, WindowPhase
from watchdog.settings import Settings

pytestmark = pytest.mark.e2e

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ONCALL, BOSS, STRANGER = "U0ONCALL", "U0BOSS", "U0NOBODY"


@dataclass
class Target:
    """The watched service: a switchable /health and a counting /rollback."""

    status: int = 200
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[bytes] = field(default_factory=list)  # the generic webhook's raw bodies
    port: int = 0

    def app(self) -> web.Application:
        async def health(_: web.Request) -> web.Response:
            return web.json_response({"ok": self.status == 200}, status=self.status)

        async def rollback(request: web.Request) -> web.Response:
            self.rollbacks.append(await request.json())
            return web.json_response({"ok": True})

        async def hook(request: web.Request) -> web.Response:
            self.hooks.append(await request.read())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_post("/rollback", rollback)
        app.router.add_post("/hook", hook)
        return app


@dataclass
class Stack:
    app: App
    slack: FakeSlack
    pagerduty: FakePagerDuty
    target: Target

    async def deploy(self, window: float = 600.0) -> str:
        assert self.app.parts is not None
        d = Deployment("api", "prod", "v2", "v1", labels={"port": str(self.target.port)})
        w = await self.app.parts.windows.open_window(d, window_seconds=window, actor="test")
        return w.id

    async def click(self, user: str, action: str, window_id: str, **kw: Any) -> httpx.Response:
        body = interaction(user, action, window_id)
        headers = kw.pop("headers", None) or signed_headers(SECRET, body)
        async with httpx.AsyncClient(base_url=self.app.url, timeout=10) as client:
            return await client.post("/slack/interactions", content=body, headers=headers)

    async def events(self, window_id: str) -> list[Event]:
        assert self.app.parts is not None
        return await self.app.parts.store.list_events(window_id)

    async def phase(self, window_id: str) -> WindowPhase:
        assert self.app.parts is not None
        w = await self.app.parts.store.get_window(window_id)
        assert w is not None
        return w.phase

    def root(self) -> Message:
        roots = self.slack.roots()
        assert len(roots) == 1, roots
        return roots[0]


async def until(check: Callable[[], Any], timeout: float = HANG_GUARD) -> None:
    """Poll (bounded) until ``check()`` (sync or async) is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def stack(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    options: dict[str, Any] = getattr(request, "param", {})
    target = Target()
    runner, url = await serve(target.app())
    target.port = int(url.rsplit(":", 1)[1])
    slack, pagerduty = FakeSlack(), FakePagerDuty()
    await slack.start()
    await pagerduty.start()
    health, grace = "http://127.0.0.1:{{ labels.port }}/health", options.get("grace", "0s")
    file = rules(tmp_path).group("api", "200ms")
    file.http("health", health, timeout="1s", action="rollback", severity="critical", grace=grace)
    plan = {
        "steps": [{"name": "rollback", "kind": "http", "url": f"{url}/rollback", "json": {}}],
        "data_loss_risk": options.get("risky", False),
    }
    settings = Settings(
        rules=[file.write()],
        store_url=SecretStr(f"sqlite:///{tmp_path / 'wd.db'}"),
        listen_port=0,
        tick=0.1,
        confirm_for=0,  # ends at rolled_back: confirmation has its own tests
        plans={"main": plan},
        default_plan="main",
        http_allowed_hosts=["127.0.0.1"],
        notify={
            "slack_bot_token": slack.token,
            "slack_signing_secret": SECRET,
            "slack_api_url": slack.api_url,
            "pagerduty_routing_key": "R0UTINGKEY0000000000000000000000",
            "pagerduty_url": pagerduty.url,
            "webhook_url": f"{url}/hook",
            "oncall_ids": [ONCALL],
            "approver_ids": [BOSS],
            "backoff": 0.2,
            "backoff_max": 1.0,
            "poll": 0.1,
            "escalate_after": options.get("escalate_after"),
        },
    )
    app = App(settings)
    await app.start()
    built = Stack(app, slack, pagerduty, target)
    yield built
    await built.app.stop()  # the one running now: a test may have restarted it
    await slack.stop()
    await pagerduty.stop()
    await runner.cleanup()


def texts(messages: list[Message]) -> str:
    return "\n".join(m.text for m in messages)


async def test_failing_deploy_story_in_slack_and_pagerduty(stack: Stack) -> None:
    wid = await stack.deploy()
    await until(lambda: stack.slack.roots())
    root = stack.root()
    assert root.text.startswith("api v2 (prod): watching api v2 in prod")  # fallback text
    assert button_ids(root) == ["watchdog_rollback", "watchdog_hold", "watchdog_ack"]
    rollback = next(b for b in root.blocks[-1]["elements"] if b["action_id"] == "watchdog_rollback")
    assert rollback["style"] == "danger" and "confirm" in rollback
    assert f"/api/v1/deployments/{wid}|deployment {wid}>" in root.blocks[2]["elements"][0]["text"]

    stack.target.status = 500
    await until(lambda: "rollback succeeded" in stack.root().text)
    assert len(stack.target.rollbacks) == 1
    root = stack.root()
    assert button_ids(root) == []  # the story is over: no buttons left
    assert "rolled back" in root.blocks[0]["text"]["text"]
    thread = texts(stack.slack.replies(root.ts))
    assert "health firing" in thread and "rolling back api to v1" in thread
    methods = [m for m, _ in stack.slack.calls]
    assert methods[0] == "chat.postMessage" and "chat.update" in methods
    assert all(b.get("channel") == "C0DEPLOYS" for m, b in stack.slack.calls if m == "chat.update")

    key = f"watchdog-{wid}"
    await until(lambda: stack.pagerduty.incidents.get(key) == "resolved")
    actions = [e["event_action"] for e in stack.pagerduty.events]
    assert actions[0] == "trigger" and actions[-1] == "resolve"
    assert {e["dedup_key"] for e in stack.pagerduty.events} == {key}
    assert stack.pagerduty.events[0]["payload"]["severity"] == "critical"


async def test_passing_deploy_story(stack: Stack) -> None:
    wid = await stack.deploy(window=1.5)
    await until(lambda: stack.slack.roots() and "window passed" in stack.root().text)
    root = stack.root()
    assert button_ids(root) == []
    # The summary is the reply posted after the root's update: wait for it, not a race.
    await until(lambda: "health: worst" in texts(stack.slack.replies(root.ts)))
    thread = texts(stack.slack.replies(root.ts))
    assert "halfway through the window, all checks green" in thread
    assert "health: worst 0.0" in thread  # the summary report: each rule's worst value
    assert await stack.phase(wid) is WindowPhase.PASSED
    assert stack.pagerduty.events == []  # nothing fired: no incident, nothing to resolve


@pytest.mark.parametrize("stack", [{"grace": "2s"}], indirect=True)
async def test_hold_during_grace_stops_the_rollback(stack: Stack) -> None:
    wid = await stack.deploy()
    await until(lambda: stack.slack.roots())
    stack.target.status = 500
    await until(lambda: "rolling back in 2s" in stack.root().text)
    response = await stack.click(ONCALL, "hold", wid)
    assert response.status_code == 200
    await until(
        lambda: _has(stack, wid, EventKind.ACTION_SUPPRESSED, "held during the grace period")
    )
    assert stack.target.rollbacks == []
    assert await stack.phase(wid) is WindowPhase.HELD
    clicks = [e for e in await stack.events(wid) if e.kind is EventKind.INTERACTION]
    assert [(c.data["actor"], c.data["action"], c.data["outcome"]) for c in clicks] == [
        (f"slack:{ONCALL}", "hold", "done")
    ]
    await until(lambda: "watchdog_resume" in button_ids(stack.root()))
    assert f"<@{ONCALL}>: hold" in texts(stack.slack.replies(stack.root().ts))


@pytest.mark.parametrize("stack", [{"grace": "1s"}], indirect=True)
async def test_grace_without_hold_rolls_back_once(stack: Stack) -> None:
    wid = await stack.deploy()
    stack.target.status = 500
    await until(lambda: _has(stack, wid, EventKind.ROLLBACK_SUCCEEDED, "rollback succeeded"))
    kinds = [e.kind for e in await stack.events(wid)]
    assert kinds.index(EventKind.ROLLBACK_SCHEDULED) < kinds.index(EventKind.ROLLBACK_STARTED)
    assert len(stack.target.rollbacks) == 1


async def test_roll_back_now_rolls_back_once(stack: Stack) -> None:
    wid = await stack.deploy()
    first = await stack.click(ONCALL, "rollback", wid)
    assert first.status_code == 200
    await until(lambda: _has(stack, wid, EventKind.ROLLBACK_SUCCEEDED, "rollback succeeded"))
    second = await stack.click(ONCALL, "rollback", wid)
    assert second.status_code == 200
    await until(lambda: stack.slack.ephemerals)
    assert len(stack.target.rollbacks) == 1
    assert stack.slack.ephemerals[0]["user"] == ONCALL
    assert "cannot roll back" in stack.slack.ephemerals[0]["text"]
    started = [e for e in await stack.events(wid) if e.kind is EventKind.ROLLBACK_STARTED]
    assert [e.data["actor"] for e in started] == [f"slack:{ONCALL}"]


@pytest.mark.parametrize("stack", [{"risky": True}], indirect=True)
async def test_approve_by_approver_runs_a_risky_plan_and_others_cannot(stack: Stack) -> None:
    wid = await stack.deploy()
    stack.target.status = 500
    await until(lambda: _phase_is(stack, wid, WindowPhase.AWAITING_APPROVAL))
    await until(lambda: "watchdog_approve" in button_ids(stack.root()))
    for action in ("approve", "rollback"):
        assert (await stack.click(ONCALL, action, wid)).status_code == 200
    await until(lambda: len(stack.slack.ephemerals) == 2)
    assert "only approvers" in stack.slack.ephemerals[0]["text"]
    assert "needs an approver" in stack.slack.ephemerals[1]["text"]
    assert stack.target.rollbacks == []
    assert await stack.phase(wid) is WindowPhase.AWAITING_APPROVAL

    assert (await stack.click(BOSS, "approve", wid)).status_code == 200
    await until(lambda: _has(stack, wid, EventKind.ROLLBACK_SUCCEEDED, "rollback succeeded"))
    assert len(stack.target.rollbacks) == 1
    started = [e for e in await stack.events(wid) if e.kind is EventKind.ROLLBACK_STARTED]
    assert started[0].data["approved_by"] == f"slack:{BOSS}"
    outcomes = [
        e.data["outcome"] for e in await stack.events(wid) if e.kind is EventKind.INTERACTION
    ]
    assert outcomes[:2] == [
        "refused: only approvers may approve a rollback",
        "refused: this rollback carries data-loss risk and needs an approver",
    ]
    assert outcomes[2] == "done"


@pytest.mark.parametrize("stack", [{"risky": True, "escalate_after": "1s"}], indirect=True)
async def test_unacknowledged_approval_escalates_with_a_second_mention(stack: Stack) -> None:
    wid = await stack.deploy()
    await until(lambda: stack.slack.roots())
    stack.target.status = 500
    await until(lambda: "escalating" in texts(stack.slack.replies(stack.root().ts)))
    escalation = [m for m in stack.slack.replies(stack.root().ts) if "escalating" in m.text]
    assert len(escalation) == 1 and escalation[0].text.startswith(f"<@{ONCALL}> ")
    await until(lambda: len(stack.pagerduty.events) >= 2)
    assert {e["dedup_key"] for e in stack.pagerduty.events} == {f"watchdog-{wid}"}
    assert len(stack.pagerduty.incidents) == 1  # escalation re-triggers the same incident


async def test_bad_interaction_requests_do_nothing(stack: Stack) -> None:
    wid = await stack.deploy()
    body = interaction(ONCALL, "hold", wid)
    forged = signed_headers("not-the-secret-at-all", body)
    stale = signed_headers(SECRET, body, timestamp=int(time.time()) - 301)
    words = {**signed_headers(SECRET, body), "X-Slack-Request-Timestamp": "soon"}
    missing = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [(forged, 401, "does not match"), (stale, 401, "5 minutes"), (words, 400, "integer")]
    cases.append((missing, 401, "missing"))
    # Issue 13 item 4: headers judged before the body, never a 500.
    huge = {**signed_headers(SECRET, body), "X-Slack-Request-Timestamp": "9" * 400}
    cases.append((huge, 400, "over 12 digits"))
    short_sig = {**signed_headers(SECRET, body), "X-Slack-Signature": "v0=abc"}
    cases.append((short_sig, 401, "not a v0= HMAC-SHA256 signature"))
    for headers, status, text in cases:
        response = await stack.click(ONCALL, "hold", wid, headers=headers)
        assert response.status_code == status, response.text
        assert text in response.json()["error"]["message"]

    response = await stack.click(STRANGER, "hold", wid)
    assert response.status_code == 200
    await until(lambda: stack.slack.ephemerals)
    assert stack.slack.ephemerals[0]["user"] == STRANGER
    assert "not on the watchdog's on-call" in stack.slack.ephemerals[0]["text"]
    assert await stack.phase(wid) is WindowPhase.WATCHING

    # A replay of a handled request: answered, but acted on once.
    headers = signed_headers(SECRET, body)
    async with httpx.AsyncClient(base_url=stack.app.url) as client:
        for _ in range(2):
            r = await client.post("/slack/interactions", content=body, headers=headers)
            assert r.status_code == 200
    await until(lambda: _phase_is(stack, wid, WindowPhase.HELD))
    assert stack.app.parts is not None and stack.app.parts.notify is not None
    assert stack.app.parts.notify.interactions is not None
    await stack.app.parts.notify.interactions.drain()
    held = [e for e in await stack.events(wid) if e.kind is EventKind.HELD]
    assert len(held) == 1


async def test_headers_are_judged_before_the_body_is_read_and_the_body_is_capped(
    stack: Stack,
) -> None:
    wid = await stack.deploy()
    stale = signed_headers(SECRET, b"x", timestamp=int(time.time()) - 3600)
    head = "".join(f"{k}: {v}\r\n" for k, v in stale.items())
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.app.port)
    # A body announced and never sent: the answer must not wait for it.
    writer.write(
        f"POST /slack/interactions HTTP/1.1\r\nHost: x\r\n{head}"
        "Content-Length: 100000\r\n\r\n".encode()
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 401"), status_line
    big = interaction(ONCALL, "hold", wid) + b"&pad=" + b"a" * (200 * 1024)
    async with httpx.AsyncClient(base_url=stack.app.url) as client:
        r = await client.post(
            "/slack/interactions", content=big, headers=signed_headers(SECRET, big)
        )
    assert r.status_code == 413, r.text
    assert await stack.phase(wid) is WindowPhase.WATCHING


async def test_a_captured_click_is_refused_after_a_restart(stack: Stack) -> None:
    wid = await stack.deploy()
    body = interaction(ONCALL, "hold", wid)
    headers = signed_headers(SECRET, body)

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(base_url=stack.app.url) as client:
            return await client.post("/slack/interactions", content=body, headers=headers)

    first = await send()
    assert first.status_code == 200, first.text
    await until(lambda: _phase_is(stack, wid, WindowPhase.HELD))
    await stack.click(ONCALL, "resume", wid)
    await until(lambda: _phase_is(stack, wid, WindowPhase.WATCHING))
    await stack.app.stop()
    # The same store, a new process: the replay memory is the store's, not the process's.
    stack.app = App(stack.app.settings)
    await stack.app.start()
    replayed = await send()
    assert replayed.status_code == 200 and replayed.json() == {"ok": True, "ignored": "replay"}
    assert stack.app.parts is not None and stack.app.parts.notify is not None
    assert stack.app.parts.notify.interactions is not None
    await stack.app.parts.notify.interactions.drain()
    assert await stack.phase(wid) is WindowPhase.WATCHING
    held = [e for e in await stack.events(wid) if e.kind is EventKind.HELD]
    assert len(held) == 1


async def test_an_api_callers_text_is_escaped_everywhere_and_never_claims_slack(
    stack: Stack,
) -> None:
    wid = await stack.deploy()
    await until(lambda: stack.slack.roots())
    reason = "<!channel> see <http://evil.example|the runbook> & <@U0BOSS>"
    async with httpx.AsyncClient(base_url=stack.app.url) as client:
        r = await client.post(
            f"/api/v1/deployments/{wid}/rollback",
            json={"reason": reason, "actor": f"slack:{BOSS}"},
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 200, r.text
    await until(lambda: "rollback succeeded" in stack.root().text)
    await until(lambda: any(b"rollback_succeeded" in h for h in stack.target.hooks))
    said = json.dumps([body for _, body in stack.slack.calls], ensure_ascii=False)
    for raw in ("<!channel>", "<http://evil.example", f"<@{BOSS}>"):
        assert raw not in said  # no ping, no disguised link, no forged mention
    assert (
        "&lt;!channel&gt; see &lt;http://evil.example|the runbook&gt; &amp; &lt;@U0BOSS&gt;" in said
    )
    assert all(b"<" not in h and b">" not in h for h in stack.target.hooks)
    told = [json.loads(h)["event"]["message"] for h in stack.target.hooks]
    assert any(reason in m for m in told)  # the same text, once decoded
    # The journal's actor is the API identity; the caller's "slack:…" is only a note.
    actors = {e.data.get("actor") for e in await stack.events(wid)} - {None, "test"}
    assert actors == {f"api (slack:{BOSS})"}


async def test_slack_down_during_rollback_does_not_delay_it(stack: Stack) -> None:
    wid = await stack.deploy()
    await until(lambda: stack.slack.roots())
    await stack.slack.stop()  # connection refused from now on
    stack.target.status = 500
    await until(lambda: _phase_is(stack, wid, WindowPhase.ROLLED_BACK))
    assert len(stack.target.rollbacks) == 1  # rolled back while Slack was unreachable
    stack.slack.faults = ["500", "429"]
    await stack.slack.start()
    await until(lambda: "rollback succeeded" in stack.root().text, timeout=20)
    assert button_ids(stack.root()) == []
    assert stack.slack.faults == []  # the 500 and the 429 were met and retried
    failed = [e for e in await stack.events(wid) if e.kind is EventKind.NOTIFY_FAILED]
    assert failed == []


async def _has(stack: Stack, wid: str, kind: EventKind, text: str) -> bool:
    return any(e.kind is kind and text in e.message for e in await stack.events(wid))


async def _phase_is(stack: Stack, wid: str, phase: WindowPhase) -> bool:
    return await stack.phase(wid) is phase
