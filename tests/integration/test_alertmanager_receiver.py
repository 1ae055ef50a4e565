"""The Alertmanager receiver over a real socket, in the real App (SQLite store, engine,
pipeline) with a local rollback target counting calls. The scheduler is off and the
rules' interval is an hour: every evaluation here is one the webhook triggered."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests import world
from tests.alertmanager_payloads import alert, many, payload
from tests.rules import rules
from tests.servers.rollback_target import RollbackTarget
from tests.world import served, starting
from watchdog.app import App

pytestmark = pytest.mark.integration

API_TOKEN = "api-token-0123456789"
AM_TOKEN = "am-token-abcdefghij"
RECEIVER = "/api/v1/alertmanager"
Start = Callable[..., Awaitable[App]]


@pytest.fixture
async def start_app(tmp_path: Path, rollback_target: RollbackTarget) -> AsyncIterator[Start]:
    count = 0
    file = rules(tmp_path).group("alerts", "1h")
    file.alertmanager("alert-5xx", alertname="APIHigh5xxRatio", action="rollback",
                      severity="critical")  # fmt: skip
    async with starting() as begin:

        async def start(**extra: Any) -> App:
            nonlocal count
            plan = {"steps": [{"name": "call", "kind": "http", "url": rollback_target.url}]}
            values: dict[str, Any] = {
                "store_url": SecretStr(f"sqlite:///{tmp_path / f'wd{count}.db'}"),
                "alertmanager_token": SecretStr(AM_TOKEN),
                "plans": {"default": plan},
                "default_plan": "default",
                "http_allowed_hosts": ["127.0.0.1"],
                "confirm_for": 0,  # ends at rolled_back: confirmation has its own tests
            }
            count += 1
            return await begin(
                served(tmp_path, file, token=API_TOKEN, **values | extra), schedule=False
            )

        yield start


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(app: App, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    auth = bearer(AM_TOKEN) if headers is None else headers
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:
        if isinstance(body, bytes):
            hdrs = {"Content-Type": "application/json", **auth}
            return await client.post(RECEIVER, content=body, headers=hdrs)
        return await client.post(RECEIVER, json=body, headers=auth)


async def api(app: App, method: str, path: str, **kw: Any) -> httpx.Response:
    return await world.api(app, method, path, token=API_TOKEN, timeout=30, **kw)


async def open_window(app: App, service: str = "checkout", env: str = "prod") -> dict[str, Any]:
    body = {"service": service, "environment": env, "version": "v2", "previous_version": "v1"}
    resp = await api(app, "POST", "/api/v1/deployments", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def settle(app: App) -> None:
    assert app.parts is not None
    await app.parts.engine.drain()


def spike(starts_at: float, **labels: str) -> dict[str, Any]:
    base = {"alertname": "APIHigh5xxRatio", "service": "checkout", "environment": "prod"}
    return alert({**base, **labels}, starts_at=starts_at)


async def test_firing_alert_rolls_the_window_back_once_despite_repeats_and_peers(
    start_app: Start, rollback_target: RollbackTarget
) -> None:
    app = await start_app()
    window = await open_window(app)
    body = payload([spike(time.time() + 1)])
    first = await post(app, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "ok", "received": 1, "new": 1, "windows": [window["id"]]}
    # The same group again (group_interval repeats), and from an HA peer: same fingerprint.
    for _ in range(3):
        again = await post(app, body)
        assert again.status_code == 200 and again.json()["new"] == 0
    await settle(app)
    assert len(rollback_target.calls) == 1
    detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
    assert detail["window"]["phase"] == "rolled_back"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("rule_firing") == 1 and kinds.count("rollback_started") == 1
    listed = (await api(app, "GET", "/api/v1/alerts")).json()["alerts"]
    assert len(listed) == 1 and listed[0]["notifications"] == 4


async def test_resolved_notification_is_recorded_and_ends_the_breach(
    start_app: Start, rollback_target: RollbackTarget
) -> None:
    app = await start_app()
    window = await open_window(app)
    # Held: rules keep being evaluated but nothing acts, so the count can be followed.
    held = await api(app, "POST", f"/api/v1/deployments/{window['id']}/hold", json={})
    assert held.status_code == 200
    started = time.time() + 1
    await post(app, payload([spike(started, instance="a"), spike(started, instance="b")]))
    await settle(app)
    resolved = alert(
        {"alertname": "APIHigh5xxRatio", "service": "checkout", "environment": "prod"}
        | {"instance": "a"},
        starts_at=started,
        status="resolved",
        ends_at=started + 30,
    )
    assert (await post(app, payload([resolved]))).status_code == 200
    await settle(app)
    alerts = (await api(app, "GET", "/api/v1/alerts", params={"status": "resolved"})).json()
    assert [a["labels"]["instance"] for a in alerts["alerts"]] == ["a"]
    assert alerts["alerts"][0]["ends_at"] is not None
    # A late "firing" copy of the resolved occurrence (a slow peer) does not revive it.
    await post(app, payload([spike(started, instance="a")]))
    await settle(app)
    firing = (await api(app, "GET", "/api/v1/alerts", params={"status": "firing"})).json()
    assert [a["labels"]["instance"] for a in firing["alerts"]] == ["b"]
    detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
    assert detail["rules"][0]["last_value"] == 1.0
    assert rollback_target.calls == []


async def test_alerts_outside_any_window_or_before_the_deploy_are_recorded_not_acted_on(
    start_app: Start, rollback_target: RollbackTarget
) -> None:
    app = await start_app()
    window = await open_window(app)
    other = spike(time.time() + 1, service="billing")
    before = spike(time.time() - 600, instance="old")
    other_env = spike(time.time() + 1, environment="staging")
    resp = await post(app, payload([other, before, other_env]))
    assert resp.status_code == 200
    assert resp.json()["received"] == 3 and resp.json()["new"] == 3
    await settle(app)
    assert rollback_target.calls == []
    listed = (await api(app, "GET", "/api/v1/alerts")).json()["alerts"]
    assert len(listed) == 3
    detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
    assert detail["window"]["phase"] == "watching"
    # The pre-deploy alert matched the window (so it was evaluated) but did not count.
    assert detail["rules"][0]["last_value"] == 0.0


async def test_three_thousand_alerts_over_a_mebibyte_are_accepted_api_limit_unchanged(
    start_app: Start,
) -> None:
    app = await start_app()
    big = json.dumps(many(3000, service="checkout", environment="prod", starts_at=time.time()))
    assert len(big) > 1 << 20
    resp = await post(app, big.encode())
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json()["new"] == 3000
    listed = (await api(app, "GET", "/api/v1/alerts", params={"limit": "1000"})).json()
    assert len(listed["alerts"]) == 1000
    # The rest of the API keeps its own 1 MiB limit.
    padded = {"service": "x", "version": "1", "labels": {"pad": "a" * (2 << 20)}}
    too_big = await api(app, "POST", "/api/v1/deployments", json=padded)
    assert too_big.status_code == 413 and str(1 << 20) in too_big.json()["error"]["message"]
    # And the receiver refuses only past its own (configurable) limit.
    small = await start_app(alertmanager_max_body_bytes=1 << 20)
    refused = await post(small, big.encode())
    assert refused.status_code == 413


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err: dict[str, Any] = resp.json()["error"]
    assert err["status"] == status and err["message"]
    return err


async def test_bad_requests_get_the_right_4xx_and_the_service_keeps_running(
    start_app: Start,
) -> None:
    app = await start_app()
    good = payload([spike(time.time())])
    error_of(await post(app, b'{"version": "4", "alerts": ['), 400)
    error_of(await post(app, b"\xff\xfe"), 400)
    wrong_version = error_of(await post(app, {**good, "version": "3"}), 422)
    assert wrong_version["field"] == "version"
    no_alerts = error_of(await post(app, {k: v for k, v in good.items() if k != "alerts"}), 422)
    assert no_alerts["field"] == "alerts"
    bare = {k: v for k, v in good["alerts"][0].items() if k != "fingerprint"}
    no_fp = error_of(await post(app, {**good, "alerts": [bare]}), 422)
    assert no_fp["field"] == "alerts.fingerprint"
    error_of(await post(app, good, headers=bearer("wrong-token")), 401)
    error_of(await post(app, good, headers=bearer(API_TOKEN)), 401)  # not the receiver's
    error_of(await post(app, good, headers={}), 401)
    for bare_header in ("Bearer", "Basic"):  # issue 13 item 1: bare schemes never pass
        error_of(await post(app, good, headers={"Authorization": bare_header}), 401)
    async with httpx.AsyncClient(base_url=app.url) as client:
        text = await client.post(
            RECEIVER, content=b"{}", headers={**bearer(AM_TOKEN), "Content-Type": "text/plain"}
        )
    error_of(text, 415)
    # A newer Alertmanager's extra fields are not a reason to drop the notification.
    extended = {**good, "newField": 1, "alerts": [{**good["alerts"][0], "extra": True}]}
    assert (await post(app, extended)).status_code == 200
    async with httpx.AsyncClient(base_url=app.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_basic_auth_from_http_config(start_app: Start) -> None:
    app = await start_app(
        alertmanager_token=None,
        alertmanager_username="alertmanager",
        alertmanager_password=SecretStr("pa:ss-word-1-0123456"),
    )
    good = payload([spike(time.time())])

    def basic(user: str, password: str) -> dict[str, str]:
        raw = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    assert (
        await post(app, good, headers=basic("alertmanager", "pa:ss-word-1-0123456"))
    ).status_code == 200
    error_of(await post(app, good, headers=basic("alertmanager", "wrong")), 401)
    error_of(await post(app, good, headers={"Authorization": "Basic !!notbase64"}), 401)


async def test_without_receiver_credentials_the_api_token_is_required(start_app: Start) -> None:
    app = await start_app(alertmanager_token=None)
    good = payload([spike(time.time())])
    error_of(await post(app, good, headers=bearer(AM_TOKEN)), 401)
    assert (await post(app, good, headers=bearer(API_TOKEN))).status_code == 200


async def test_overload_answers_503_and_a_broken_store_503_never_4xx(start_app: Start) -> None:
    app = await start_app(alertmanager_max_inflight=1)
    good = json.dumps(payload([spike(time.time())])).encode()
    # A delivery whose body is still on its way holds the only slot.
    assert app.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    head = (
        f"POST {RECEIVER} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {AM_TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(good)}\r\n\r\n"
    )
    writer.write(head.encode() + good[:10])
    await writer.drain()
    async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:
        headers = {**bearer(AM_TOKEN), "Content-Type": "application/json"}
        busy = await client.post(RECEIVER, content=good, headers=headers)
        for _ in range(100):  # until the server has seen the slow delivery's headers
            if busy.status_code == 503:
                break
            await asyncio.sleep(0.02)
            busy = await client.post(RECEIVER, content=good, headers=headers)
        assert error_of(busy, 503) and busy.headers["Retry-After"] == "1"
        writer.write(good[10:])
        await writer.drain()
        status_line = await reader.readline()
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
        writer.close()
        after = await client.post(RECEIVER, content=good, headers=headers)
        assert after.status_code == 200  # the slot is free again
    assert app.parts is not None
    await app.parts.store.close()  # the store is gone: Alertmanager must retry, not drop
    error_of(await post(app, good), 503)


async def test_openapi_documents_the_receiver_and_the_alert_list(start_app: Start) -> None:
    app = await start_app()
    assert app.parts is not None
    doc = await api(app, "GET", "/openapi.json")
    doc = doc.json()
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.parts.web_app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert routes == documented
    receive = doc["paths"][RECEIVER]["post"]
    assert receive["security"] == [{"receiverBearer": []}, {"receiverBasic": []}]
    assert "503" in receive["responses"] and "WebhookPayload" in doc["components"]["schemas"]
    assert doc["paths"]["/api/v1/alerts"]["get"]["responses"]["200"]


async def test_huge_label_and_annotation_values_are_truncated_never_refused(
    start_app: Start, rollback_target: RollbackTarget
) -> None:
    app = await start_app()
    window = await open_window(app)
    huge = spike(time.time() + 1, pad="x" * (2 << 20))
    huge["annotations"]["description"] = "y" * 100_000
    huge["labels"]["n" * 300] = "long name"
    resp = await post(app, payload([huge]))
    assert resp.status_code == 200, resp.text[:300]  # a 4xx would make Alertmanager drop it
    await settle(app)
    [stored] = (await api(app, "GET", "/api/v1/alerts")).json()["alerts"]
    pad, described = stored["labels"]["pad"], stored["annotations"]["description"]
    assert len(pad) == 1024 and pad.endswith("…[truncated]") and pad.startswith("xxx")
    assert len(described) == 4096 and described.endswith("…[truncated]")
    assert "n" * 116 + "…[truncated]" in stored["labels"]  # names are capped too
    # The short labels it is matched on are whole: the rule still fires, once.
    assert len(rollback_target.calls) == 1
    detail = (await api(app, "GET", f"/api/v1/deployments/{window['id']}")).json()
    assert detail["window"]["phase"] == "rolled_back"
    # The caps are settings.
    roomy = await start_app(alertmanager_max_label_chars=4096)
    await post(roomy, payload([huge]))
    [kept] = (await api(roomy, "GET", "/api/v1/alerts")).json()["alerts"]
    assert len(kept["labels"]["pad"]) == 4096
