"""The HTTP API over a real socket, driven by httpx against an in-memory Controller.

The real engine has its own end-to-end tests; here the fake is small but honest:
phases move as the Controller protocol says, terminal windows refuse actions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes import BASE_URL, MAX_BODY, TOKEN, FakeController, Harness, serve
from watchdog.foundation.model import (
    EventKind,
    Verdict,
    WindowPhase,
)
from watchdog.web.window_schemas import WindowDetailOut, WindowListOut, WindowOut

DEPLOYMENTS = "/api/v1/deployments"


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    h = Harness()
    runner, url = await serve(h.app())
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        yield h, client
    await runner.cleanup()


@pytest.fixture
def client(harness: tuple[Harness, httpx.AsyncClient]) -> httpx.AsyncClient:
    return harness[1]


@pytest.fixture
def ctrl(harness: tuple[Harness, httpx.AsyncClient]) -> FakeController:
    return harness[0].controller


def deployment(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"service": "checkout", "version": "1.4.2", "previous_version": "1.4.1"}
    body.update(over)
    return body


async def open_window(client: httpx.AsyncClient, **over: Any) -> dict[str, Any]:
    resp = await client.post(DEPLOYMENTS, json=deployment(**over))
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def assert_error(resp: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = resp.json()["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error.get("field") == field, error
        assert any(d["field"] == field for d in error["details"]), error
    return error


# --- happy paths ----------------------------------------------------------------------


async def test_open_window_201_with_location(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    resp = await client.post(
        DEPLOYMENTS,
        json=deployment(
            labels={"region": "eu-west-1"}, window="45m", plan="helm-undo", environment="staging"
        ),
    )
    assert resp.status_code == 201, resp.text
    body = WindowOut.model_validate(resp.json())
    assert resp.headers["Location"] == f"{DEPLOYMENTS}/{body.id}"
    assert body.url == f"{BASE_URL}{DEPLOYMENTS}/{body.id}"
    assert (body.service, body.version, body.previous_version) == ("checkout", "1.4.2", "1.4.1")
    assert body.environment == "staging" and body.plan == "helm-undo"
    assert body.labels == {"region": "eu-west-1"}
    assert body.phase == WindowPhase.WATCHING
    assert body.seconds_left == 2700.0
    assert body.started_at.endswith("Z")
    assert ctrl.calls[-1][::2] == ("open", "api")


async def test_window_defaults(client: httpx.AsyncClient) -> None:
    body = await open_window(client, previous_version=None)
    assert body["environment"] == "production"
    assert body["previous_version"] is None and body["labels"] == {} and body["plan"] is None
    assert body["seconds_left"] == 1800.0


async def test_open_in_shadow_with_a_confirmation_time(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    body = await open_window(client, shadow=True, confirm_for="2m")
    assert body["shadow"] is True and body["confirm_for"] == 120
    assert body["confirm_until"] is None  # only while confirming
    window = ctrl.windows[body["id"]]
    assert window.shadow and window.confirm_for == 120
    plain = await open_window(client, confirm_for=0)
    assert plain["shadow"] is False and plain["confirm_for"] == 0
    for bad in (-1, "2d", "soon"):
        resp = await client.post(DEPLOYMENTS, json=deployment(confirm_for=bad))
        assert_error(resp, 422, "confirm_for")
    assert_error(await client.post(DEPLOYMENTS, json=deployment(shadow="maybe")), 422, "shadow")


async def test_a_confirming_window_counts_down_to_its_confirmation(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    body = await open_window(client, confirm_for="5m")
    window = ctrl.windows[body["id"]]
    ctrl.windows[window.id] = window.with_phase(WindowPhase.CONFIRMING, ctrl.now)
    got = (await client.get(f"{DEPLOYMENTS}/{window.id}")).json()["window"]
    assert got["phase"] == "confirming" and got["seconds_left"] == 300
    assert got["confirm_until"] is not None


async def test_openapi_names_the_new_phases_events_and_fields(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    text = json.dumps(doc)
    for name in ("confirming", "rollback_ineffective", "would_roll_back", "recovered"):
        assert f'"{name}"' in text, name
    schemas = doc["components"]["schemas"]
    assert {"shadow", "confirm_for"} <= set(schemas["DeploymentIn"]["properties"])
    assert {"shadow", "confirm_for", "confirm_until"} <= set(schemas["WindowOut"]["properties"])
    assert "shadow" in schemas["RuleOut"]["properties"]


async def test_list_filters(client: httpx.AsyncClient) -> None:
    a = await open_window(client, service="checkout")
    b = await open_window(client, service="search")
    c = await open_window(client, service="search", environment="staging")
    await client.post(f"{DEPLOYMENTS}/{b['id']}/hold", json={})

    async def ids(**params: Any) -> list[str]:
        resp = await client.get(DEPLOYMENTS, params=params)
        assert resp.status_code == 200, resp.text
        return [w.id for w in WindowListOut.model_validate(resp.json()).windows]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(service="search") == [c["id"], b["id"]]
    assert await ids(service="search", environment="production") == [b["id"]]
    assert await ids(phase="held") == [b["id"]]
    assert await ids(phase=["held", "watching"], limit=2) == [c["id"], b["id"]]
    assert await ids(phase="held,watching") == [c["id"], b["id"], a["id"]]
    assert await ids(limit=1) == [c["id"]]


async def test_detail_has_rules_and_events(client: httpx.AsyncClient, ctrl: FakeController) -> None:
    opened = await open_window(client)
    ctrl.record(
        opened["id"], EventKind.RULE_PENDING, "5xx ratio 0.07 above 5%", rule="http-5xx-ratio"
    )
    resp = await client.get(f"{DEPLOYMENTS}/{opened['id']}")
    assert resp.status_code == 200
    raw = resp.json()
    detail = WindowDetailOut.model_validate(raw)
    assert detail.window.id == opened["id"]
    rule = detail.rules[0]
    assert (rule.name, rule.verdict, rule.last_value) == ("http-5xx-ratio", Verdict.PENDING, 0.0712)
    assert raw["rules"][0]["worst_value"] is None  # NaN is not JSON: it renders as null
    assert rule.pending_since is not None and rule.pending_since.endswith("Z")
    assert [e.kind for e in detail.events] == [EventKind.WINDOW_OPENED, EventKind.RULE_PENDING]
    assert detail.events[1].rule == "http-5xx-ratio" and detail.events[1].seq == 2


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("hold", WindowPhase.WATCHING, WindowPhase.HELD),
        ("resume", WindowPhase.HELD, WindowPhase.WATCHING),
        ("rollback", WindowPhase.WATCHING, WindowPhase.ROLLED_BACK),
        ("abort", WindowPhase.WATCHING, WindowPhase.ABORTED),
    ],
)
async def test_actions(
    client: httpx.AsyncClient,
    ctrl: FakeController,
    action: str,
    start: WindowPhase,
    end: WindowPhase,
) -> None:
    opened = await open_window(client)
    ctrl.windows[opened["id"]] = ctrl.windows[opened["id"]].with_phase(start, ctrl.now)
    resp = await client.post(
        f"{DEPLOYMENTS}/{opened['id']}/{action}",
        json={"actor": "alice", "reason": "checking the graphs"},
    )
    assert resp.status_code == 200, resp.text
    body = WindowOut.model_validate(resp.json())
    assert body.phase == end
    # The actor is the API identity; what the caller calls itself is a note beside it.
    assert ctrl.calls[-1] == (action, opened["id"], "api (alice)", "checking the graphs")
    if end.terminal:
        assert body.seconds_left == 0


async def test_action_without_body(client: httpx.AsyncClient, ctrl: FakeController) -> None:
    opened = await open_window(client)
    resp = await client.post(f"{DEPLOYMENTS}/{opened['id']}/hold")
    assert resp.status_code == 200, resp.text
    assert ctrl.calls[-1] == ("hold", opened["id"], "api", None)
    resp = await client.post(
        f"{DEPLOYMENTS}/{opened['id']}/resume", content=b"", headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 200, resp.text


# --- auth and operations --------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x", "Bearer ünïcode"],
)
async def test_auth_required(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.encode()}
    for method, path in [("GET", DEPLOYMENTS), ("POST", DEPLOYMENTS), ("GET", "/openapi.json")]:
        request = client.build_request(method, path, json=deployment())
        if authorization is None:
            del request.headers["Authorization"]
        else:
            request.headers["Authorization"] = headers["Authorization"].decode("latin-1")
        resp = await client.send(request)
        assert_error(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_open_endpoints_need_no_token(harness: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = harness
    async with httpx.AsyncClient(base_url=str(client.base_url)) as anonymous:
        resp = await anonymous.get("/healthz")
        assert resp.status_code == 200 and resp.json() == {"status": "ok"}
        resp = await anonymous.get("/readyz")
        assert resp.status_code == 200 and resp.json() == {"status": "ready"}
        h.is_ready = False
        assert_error(await anonymous.get("/readyz"), 503)
        h.is_ready = "fencing token #3 refused by the store (newest #4)"  # a deposed leader
        error = assert_error(await anonymous.get("/readyz"), 503)
        assert error["message"] == "not ready: fencing token #3 refused by the store (newest #4)"
        resp = await anonymous.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        assert "watchdog_test_things_total 1.0" in resp.text


async def test_auth_disabled_without_token() -> None:
    h = Harness()
    runner, url = await serve(h.app(api_token=None))
    try:
        async with httpx.AsyncClient(base_url=url) as anonymous:
            assert (await anonymous.get(DEPLOYMENTS)).status_code == 200
    finally:
        await runner.cleanup()


async def test_unexpected_error_is_500_without_internals(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    ctrl.explode = RuntimeError("password=hunter2 at /srv/db")
    resp = await client.get(f"{DEPLOYMENTS}/abc")
    assert_error(resp, 500)
    assert "hunter2" not in resp.text and "RuntimeError" not in resp.text
    ctrl.explode = None
    assert (await client.get("/healthz")).status_code == 200


# --- bad input ------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
NESTED = b"[" * 10_000 + b"]" * 10_000

BAD_INPUT: list[tuple[str, str, str, dict[str, Any], int, str | None]] = [
    (
        "malformed json",
        "POST",
        DEPLOYMENTS,
        {"content": b'{"service": "a",', "headers": JSON},
        400,
        None,
    ),
    ("array body", "POST", DEPLOYMENTS, {"json": [deployment()]}, 422, None),
    ("string body", "POST", DEPLOYMENTS, {"json": "checkout"}, 422, None),
    ("empty body", "POST", DEPLOYMENTS, {"content": b"", "headers": JSON}, 400, None),
    ("version int", "POST", DEPLOYMENTS, {"json": deployment(version=123)}, 422, "version"),
    ("missing version", "POST", DEPLOYMENTS, {"json": {"service": "checkout"}}, 422, "version"),
    ("unknown field", "POST", DEPLOYMENTS, {"json": deployment(colour="red")}, 422, "colour"),
    (
        "promql injection",
        "POST",
        DEPLOYMENTS,
        {"json": deployment(version='1"}) or vector(1')},
        422,
        "version",
    ),
    (
        "trailing newline",
        "POST",
        DEPLOYMENTS,
        {"json": deployment(service="checkout\n")},
        422,
        "service",
    ),
    ("empty service", "POST", DEPLOYMENTS, {"json": deployment(service="")}, 422, "service"),
    ("huge version", "POST", DEPLOYMENTS, {"json": deployment(version="9" * 3000)}, 422, "version"),
    (
        "unsafe label value",
        "POST",
        DEPLOYMENTS,
        {"json": deployment(labels={"team": 'a"} or 1'})},
        422,
        "labels.team",
    ),
    (
        "bad label name",
        "POST",
        DEPLOYMENTS,
        {"json": deployment(labels={"bad-name": "x"})},
        422,
        "labels",
    ),
    (
        "too many labels",
        "POST",
        DEPLOYMENTS,
        {"json": deployment(labels={f"l{i}": "x" for i in range(33)})},
        422,
        "labels",
    ),
    ("labels list", "POST", DEPLOYMENTS, {"json": deployment(labels=["a"])}, 422, "labels"),
    ("window soon", "POST", DEPLOYMENTS, {"json": deployment(window="soon")}, 422, "window"),
    ("window negative", "POST", DEPLOYMENTS, {"json": deployment(window=-5)}, 422, "window"),
    ("window negative str", "POST", DEPLOYMENTS, {"json": deployment(window="-5m")}, 422, "window"),
    ("window zero", "POST", DEPLOYMENTS, {"json": deployment(window="0s")}, 422, "window"),
    ("window too long", "POST", DEPLOYMENTS, {"json": deployment(window="8d")}, 422, "window"),
    ("window bool", "POST", DEPLOYMENTS, {"json": deployment(window=True)}, 422, "window"),
    (
        "window 1e400",
        "POST",
        DEPLOYMENTS,
        {"content": b'{"service":"a","version":"1","window":1e400}', "headers": JSON},
        422,
        "window",
    ),
    (
        "NaN",
        "POST",
        DEPLOYMENTS,
        {"content": b'{"service":"a","version":"1","window":NaN}', "headers": JSON},
        400,
        None,
    ),
    (
        "huge integer",
        "POST",
        DEPLOYMENTS,
        {"content": b'{"window":' + b"9" * 4400 + b"}", "headers": JSON},
        400,
        None,
    ),
    ("oversized", "POST", DEPLOYMENTS, {"json": deployment(plan="x" * (MAX_BODY + 10))}, 413, None),
    (
        "text/plain",
        "POST",
        DEPLOYMENTS,
        {"content": json.dumps(deployment()).encode(), "headers": {"Content-Type": "text/plain"}},
        415,
        None,
    ),
    (
        "no content type",
        "POST",
        DEPLOYMENTS,
        {"content": json.dumps(deployment()).encode(), "headers": {"Content-Type": ""}},
        415,
        None,
    ),
    ("deeply nested", "POST", DEPLOYMENTS, {"content": NESTED, "headers": JSON}, 400, None),
    (
        "nested under field",
        "POST",
        DEPLOYMENTS,
        {
            "content": b'{"service":"a","version":"1","labels":' + b"[" * 900 + b"]" * 900 + b"}",
            "headers": JSON,
        },
        422,
        "labels",
    ),
    (
        "non-utf8",
        "POST",
        DEPLOYMENTS,
        {"content": b'{"service": "\xff\xfe", "version": "1"}', "headers": JSON},
        400,
        None,
    ),
    (
        "utf16",
        "POST",
        DEPLOYMENTS,
        {"content": json.dumps(deployment()).encode("utf-16"), "headers": JSON},
        400,
        None,
    ),
    ("unknown id", "GET", f"{DEPLOYMENTS}/doesnotexist", {}, 404, None),
    ("unknown id action", "POST", f"{DEPLOYMENTS}/doesnotexist/rollback", {"json": {}}, 404, None),
    ("id with odd chars", "GET", f"{DEPLOYMENTS}/a%20b", {}, 404, None),
    ("unknown route", "GET", "/api/v2/nothing", {}, 404, None),
    ("unknown action", "POST", f"{DEPLOYMENTS}/abc/explode", {"json": {}}, 404, None),
    ("wrong method", "DELETE", DEPLOYMENTS, {}, 405, None),
    ("wrong method detail", "PUT", f"{DEPLOYMENTS}/abc", {"json": {}}, 405, None),
    ("bad phase", "GET", DEPLOYMENTS, {"params": {"phase": "exploded"}}, 422, "phase"),
    ("empty phase", "GET", DEPLOYMENTS, {"params": {"phase": ""}}, 422, "phase"),
    ("limit zero", "GET", DEPLOYMENTS, {"params": {"limit": "0"}}, 422, "limit"),
    ("limit huge", "GET", DEPLOYMENTS, {"params": {"limit": "5000"}}, 422, "limit"),
    ("limit text", "GET", DEPLOYMENTS, {"params": {"limit": "ten"}}, 422, "limit"),
    ("limit twice", "GET", DEPLOYMENTS, {"params": [("limit", "1"), ("limit", "2")]}, 422, "limit"),
    ("unknown param", "GET", DEPLOYMENTS, {"params": {"servce": "x"}}, 422, "servce"),
    ("unsafe service filter", "GET", DEPLOYMENTS, {"params": {"service": '"}'}}, 422, "service"),
    ("action array", "POST", f"{DEPLOYMENTS}/abc/hold", {"json": []}, 422, None),
    (
        "action unknown field",
        "POST",
        f"{DEPLOYMENTS}/abc/hold",
        {"json": {"force": True}},
        422,
        "force",
    ),
    (
        "reason too long",
        "POST",
        f"{DEPLOYMENTS}/abc/hold",
        {"json": {"reason": "x" * 501}},
        422,
        "reason",
    ),
    (
        "reason control chars",
        "POST",
        f"{DEPLOYMENTS}/abc/hold",
        {"json": {"reason": "a\x1b[31mred"}},
        422,
        "reason",
    ),
    (
        "reason lone surrogate",
        "POST",
        f"{DEPLOYMENTS}/abc/hold",
        {"content": b'{"reason": "\\ud800"}', "headers": JSON},
        422,
        "reason",
    ),
    ("long note", "POST", f"{DEPLOYMENTS}/abc/hold", {"json": {"note": "a" * 101}}, 422, "note"),
    ("control note", "POST", f"{DEPLOYMENTS}/abc/hold", {"json": {"actor": "a\nb"}}, 422, "actor"),
    (
        "action text/plain",
        "POST",
        f"{DEPLOYMENTS}/abc/hold",
        {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
        415,
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
async def test_bad_input_is_a_json_4xx(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    resp = await client.request(method, path, **kwargs)
    error = assert_error(resp, status, field)
    assert len(resp.content) < 4000, "errors must not echo big inputs"
    if status == 405:
        assert resp.headers["Allow"]
    if field == "version":
        assert "version" in error["message"]
    health = await client.get("/healthz")
    assert health.status_code == 200


async def test_rollback_of_terminal_window_is_409(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    opened = await open_window(client)
    assert (await client.post(f"{DEPLOYMENTS}/{opened['id']}/rollback", json={})).status_code == 200
    for action in ("rollback", "hold", "abort"):
        resp = await client.post(f"{DEPLOYMENTS}/{opened['id']}/{action}", json={})
        error = assert_error(resp, 409)
        assert "rolled_back" in error["message"]
    assert [c[0] for c in ctrl.calls] == ["open", "rollback"]


# --- the OpenAPI document -------------------------------------------------------------


async def test_openapi_lists_every_route(harness: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = harness
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    app = h.app()
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert routes == documented
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["paths"]["/metrics"]["get"]["security"] == []
    assert doc["security"] == [{"bearerAuth": []}]
    assert_refs_resolve(doc, doc)


def assert_refs_resolve(node: Any, doc: dict[str, Any]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/components/schemas/")
            assert name in doc["components"]["schemas"], ref
        for value in node.values():
            assert_refs_resolve(value, doc)
    elif isinstance(node, list):
        for value in node:
            assert_refs_resolve(value, doc)


async def test_responses_match_openapi_schemas(
    client: httpx.AsyncClient, ctrl: FakeController
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = (await client.get("/openapi.json")).json()

    def check(resp: httpx.Response, path: str, method: str, status: int) -> None:
        # The status is the one expected and documented for this operation by itself:
        # the catch-all `default` would accept any error body, a 500 included.
        assert resp.status_code == status, resp.text
        spec = doc["paths"][path][method]["responses"][str(status)]
        schema = {**spec["content"]["application/json"]["schema"], "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(resp.json())

    one = "/api/v1/deployments/{id}"
    opened = await client.post(DEPLOYMENTS, json=deployment(labels={"a": "b"}))
    check(opened, DEPLOYMENTS, "post", 201)
    window_id = opened.json()["id"]
    ctrl.record(window_id, EventKind.RULE_FIRING, "boom", rule="http-5xx-ratio")
    check(await client.get(DEPLOYMENTS), DEPLOYMENTS, "get", 200)
    check(await client.get(f"{DEPLOYMENTS}/{window_id}"), one, "get", 200)
    hold = await client.post(f"{DEPLOYMENTS}/{window_id}/hold")
    check(hold, f"{one}/hold", "post", 200)
    check(await client.post(DEPLOYMENTS, json={"version": 1}), DEPLOYMENTS, "post", 422)
    check(await client.get(f"{DEPLOYMENTS}/nope"), one, "get", 404)


@pytest.mark.parametrize(
    "value", ["a", "v1.2.3", "eu-west-1", "a" * 128, "a" * 129, "", "-a", "a\n", "a b", 'x"}', "ü"]
)
def test_schema_patterns_agree_with_the_validators(value: str) -> None:
    import re

    from watchdog.rulefile.template import SAFE_LABEL_NAME, SAFE_VALUE
    from watchdog.web.schemas import LABEL_NAME_PATTERN, SAFE_SCHEMA

    # JSON Schema patterns are ECMA regexes: `$` never matches before a final newline.
    ecma_value = re.compile(SAFE_SCHEMA["pattern"].removesuffix("$") + r"\Z")
    ecma_label = re.compile(LABEL_NAME_PATTERN.removesuffix("$") + r"\Z")
    assert bool(ecma_value.search(value)) == bool(SAFE_VALUE.fullmatch(value))
    assert bool(ecma_label.search(value)) == bool(SAFE_LABEL_NAME.fullmatch(value))
