"""The status page over a real socket: who may look, what it shows, how it escapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.fakes import BASE_URL, MAX_BODY, NOW, TOKEN, FakeController, Harness, serve
from watchdog.foundation.model import Deployment, EventKind, Verdict, WindowPhase
from watchdog.lifecycle.control import WindowDetail
from watchdog.store.base import RulePoint
from watchdog.store.sqlite import SqliteStore
from watchdog.web.server import build_web_app
from watchdog.web.status import COOKIE, SIGN_OUT_PATH, STATUS_PATHS, add_status_routes
from watchdog.web.status_auth import SESSIONS_PATH, SessionLimits, StatusAuth, StatusSessions

pytestmark = pytest.mark.integration

STATUS_TOKEN = "read-only-status-token-42"
EVIL = "<script>alert('x')</script>"


class PointsController(FakeController):
    """The fake, plus a value series per rule."""

    async def detail(self, window_id: str) -> WindowDetail:
        base = await super().detail(window_id)
        points = [RulePoint(NOW + i, 0.01 * i, Verdict.OK) for i in range(5)]
        points.append(RulePoint(NOW + 6, 0.2, Verdict.FIRING))
        return replace(base, points={"http-5xx-ratio": points})


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    runners: list[web.AppRunner] = []
    store = SqliteStore(str(tmp_path / "sessions.db"))  # one store: "replicas" share it
    await store.open()

    async def _start(
        *,
        public: bool = False,
        api_token: str | None = TOKEN,
        ttl: float = 3600.0,
        status_token: str = STATUS_TOKEN,
        limits: SessionLimits = SessionLimits(),  # noqa: B008
    ) -> tuple[PointsController, str]:
        controller = PointsController()
        tokens = tuple(t.encode() for t in (api_token, status_token) if t)
        auth = StatusAuth(tokens, public=public)
        sessions = StatusSessions(store, lambda: controller.now, ttl, limits)
        h = Harness(controller=controller)
        app = build_web_app(
            controller,
            api_token=api_token,
            base_url=BASE_URL,
            max_body_bytes=MAX_BODY,
            registry=h.registry,
            ready=h.ready,
            clock=lambda: controller.now,
            extra_routes=lambda a: add_status_routes(
                a, controller, auth=auth, sessions=sessions, clock=lambda: controller.now
            ),
            open_paths=STATUS_PATHS,
        )
        runner, url = await serve(app)
        runners.append(runner)
        await controller.open_window(
            Deployment("checkout", "prod", "v2", "v1"), window_seconds=600, actor="t"
        )
        return controller, url

    yield _start
    for runner in runners:
        await runner.cleanup()
    await store.close()


async def get(url: str, path: str, **kw: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.get(path, **kw)  # type: ignore[arg-type]


async def test_no_credentials_get_a_sign_in_page_not_data(start) -> None:
    _, url = await start()
    for path in ("/", "/deployments/abc"):
        r = await get(url, path)
        assert r.status_code == 401
        assert "Sign-in needed" in r.text and "checkout" not in r.text
    wrong = await get(url, "/?token=nope")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


@pytest.mark.parametrize("token", [TOKEN, STATUS_TOKEN])
async def test_token_link_is_traded_for_an_httponly_cookie(start, token: str) -> None:
    _, url = await start()
    r = await get(url, f"/?token={token}&partial=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/?partial=1"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
    value = r.cookies[COOKIE]
    page = await get(url, "/", headers={"Cookie": f"{COOKIE}={value}"})
    assert page.status_code == 200 and "checkout v2" in page.text
    forged = await get(url, "/", headers={"Cookie": f"{COOKIE}={'0' * 64}"})
    assert forged.status_code == 401
    guessed = await get(url, "/", headers={"Cookie": f"{COOKIE}={'A' * 43}"})
    assert guessed.status_code == 401


async def test_each_sign_in_is_its_own_session_valid_on_every_replica(start) -> None:
    _, url = await start()
    _, other = await start()  # another replica on the same store
    first = (await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE]
    second = (await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE]
    assert first != second  # random, not a function of the token
    for value in (first, second):
        page = await get(other, "/", headers={"Cookie": f"{COOKIE}={value}"})
        assert page.status_code == 200


async def test_sessions_expire_server_side(start) -> None:
    controller, url = await start(ttl=60)
    r = await get(url, f"/?token={TOKEN}")
    assert "Max-Age=60" in r.headers["set-cookie"]
    cookie = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
    controller.now += 59
    assert (await get(url, "/", headers=cookie)).status_code == 200
    controller.now += 2  # the browser may still send it: the server says no
    assert (await get(url, "/", headers=cookie)).status_code == 401


async def test_the_api_token_signs_everyone_out(start) -> None:
    _, url = await start()
    cookies = [(await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE] for _ in range(3)]
    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.delete(
            SESSIONS_PATH, headers={"Authorization": f"Bearer {STATUS_TOKEN}"}
        )
        assert refused.status_code == 401  # the read-only token cannot
        done = await client.delete(SESSIONS_PATH, headers={"Authorization": f"Bearer {TOKEN}"})
    assert done.status_code == 200 and done.json() == {"revoked": 3}
    for value in cookies:
        assert (await get(url, "/", headers={"Cookie": f"{COOKIE}={value}"})).status_code == 401
    assert (await get(url, f"/?token={STATUS_TOKEN}")).status_code == 303  # sign in again


async def test_read_only_token_opens_the_page_but_not_the_api(start) -> None:
    _, url = await start()
    bearer = {"Authorization": f"Bearer {STATUS_TOKEN}"}
    assert (await get(url, "/", headers=bearer)).status_code == 200
    assert (await get(url, "/api/v1/deployments", headers=bearer)).status_code == 401


async def test_public_mode_needs_no_login_and_the_api_still_does(start) -> None:
    _, url = await start(public=True)
    assert (await get(url, "/")).status_code == 200
    assert (await get(url, "/api/v1/deployments")).status_code == 401


async def test_window_page_shows_graph_progress_and_timeline(start) -> None:
    controller, url = await start(public=True)
    window_id = next(iter(controller.windows))
    controller.rules[0] = replace(controller.rules[0], reason=EVIL, threshold_value=0.05)
    controller.record(window_id, EventKind.STEP_SUCCEEDED, "step call succeeded")
    controller.events[window_id][-1] = replace(
        controller.events[window_id][-1], data={"step": "call", "output": f"HTTP 200 {EVIL}"}
    )
    r = await get(url, f"/deployments/{window_id}")
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert EVIL not in html and "&lt;script&gt;" in html
    assert 'data-points="6"' in html and html.count("<circle") == 6
    assert 'class="threshold"' in html and "<polyline" in html
    # pending since +30s, last evaluated at +45s, for 60s: a quarter of the way
    assert '<progress max="60" value="15">' in html
    assert 'class="ev step_succeeded"' in html and "<pre class=output>HTTP 200" in html
    assert r.headers["x-watchdog-terminal"] == "0"


async def test_partial_is_only_the_main_content_and_says_when_terminal(start) -> None:
    controller, url = await start(public=True)
    window_id = next(iter(controller.windows))
    await controller.rollback(window_id, actor="alice", reason="bad")
    r = await get(url, f"/deployments/{window_id}?partial=1")
    assert r.status_code == 200 and not r.text.startswith("<!doctype")
    assert 'data-phase="rolled_back"' in r.text
    assert r.headers["x-watchdog-terminal"] == "1"
    index = await get(url, "/")
    assert "no deploy is being watched right now" in index.text
    assert f'href="/deployments/{window_id}"' in index.text


async def test_unknown_window_is_an_html_404_and_assets_are_open(start) -> None:
    _, url = await start(public=True)
    r = await get(url, "/deployments/nope")
    assert r.status_code == 404 and "No such window" in r.text
    _, closed = await start()
    js = await get(closed, "/status.js")
    assert js.status_code == 200 and "partial=1" in js.text
    css = await get(closed, "/status.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_api_detail_carries_each_rules_samples(start) -> None:
    controller, url = await start()
    window_id = next(iter(controller.windows))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = (await get(url, f"/api/v1/deployments/{window_id}", headers=headers)).json()
    samples = body["rules"][0]["samples"]
    assert len(samples) == 6
    assert samples[-1]["value"] == 0.2 and samples[-1]["verdict"] == "firing"
    assert samples[0]["at"].endswith("Z")
    assert WindowPhase(body["window"]["phase"]) is WindowPhase.WATCHING


async def test_shadow_and_confirmation_are_shown(start) -> None:
    controller, url = await start(public=True)
    window = await controller.open_window(
        Deployment("web", "prod", "v3", "v2"), window_seconds=600, actor="t", shadow=True
    )
    controller.rules[0] = replace(controller.rules[0], shadow=True)
    controller.record(window.id, EventKind.WOULD_ROLL_BACK, "shadow mode: would roll back web")
    page = (await get(url, f"/deployments/{window.id}")).text
    assert page.count('<span class="badge shadow">shadow</span>') == 2  # the window, the rule
    assert 'class="ev would_roll_back"' in page
    controller.windows[window.id] = window.with_phase(WindowPhase.CONFIRMING, controller.now)
    page = (await get(url, f"/deployments/{window.id}")).text
    assert 'data-phase="confirming"' in page and "confirming the recovery: 5m left" in page
    index = (await get(url, "/")).text
    assert f'data-window="{window.id}"' in index  # still an open window on the front page
    controller.windows[window.id] = window.with_phase(WindowPhase.ROLLED_BACK, controller.now)
    recent = (await get(url, "/")).text.split("Recent windows", 1)[1]
    assert '<span class="badge shadow">shadow</span>' in recent


async def test_a_closed_window_opens_with_its_verdict_and_what_to_do(start) -> None:
    controller, url = await start(public=True)
    window_id = next(iter(controller.windows))
    controller.rules[0] = replace(controller.rules[0], threshold_value=0.05, unit="ratio")
    controller.record(window_id, EventKind.RULE_FIRING, "fired", rule="http-5xx-ratio")
    fired = controller.events[window_id][-1]
    data = {"value": 0.2924, "threshold": "> 0.05", "for": 60.0}
    controller.events[window_id][-1] = replace(fired, data=data)
    await controller.rollback(window_id, actor="alice", reason="bad")
    html = (await get(url, f"/deployments/{window_id}")).text
    main = html.split('<main id=main data-terminal="1">', 1)[1]
    assert main.index("class=sentence>Rolled back checkout v2 → v1") < main.index("<svg")
    assert "http-5xx-ratio 29.2 % &gt; 5 % for 1 m" in main
    assert f"watchdog deploy status {window_id}" in main
    assert "decided <b>29.2 %</b>" in main and "limit &gt; 5 %" in main
    assert 'class="axis-title"' in main and ">time (UTC)</text>" in main
    assert 'class="marker deploy"' in main


# --- issue 25: sign-out, sessions bound to their token, caps ----------------------------
def cookie_of(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}"}


async def test_a_reader_signs_out_and_only_their_session_ends(start) -> None:
    _, url = await start()
    mine, theirs = [(await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE] for _ in "ab"]
    page = await get(url, "/", headers=cookie_of(mine))
    assert '<form class=signout method=post action="/sign-out">' in page.text
    assert "form-action 'self'" in page.headers["Content-Security-Policy"]
    bearer = await get(url, "/", headers={"Authorization": f"Bearer {STATUS_TOKEN}"})
    assert bearer.status_code == 200 and "signout" not in bearer.text  # no session to end
    async with httpx.AsyncClient(base_url=url) as client:
        out = await client.post(SIGN_OUT_PATH, headers=cookie_of(mine))
    assert out.status_code == 303 and out.headers["location"] == "/"
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{COOKIE}=""') and "Max-Age=0" in cleared
    assert (await get(url, "/", headers=cookie_of(mine))).status_code == 401  # ended server-side
    assert (await get(url, "/", headers=cookie_of(theirs))).status_code == 200


async def test_a_changed_token_ends_the_sessions_it_opened(start) -> None:
    _, url = await start()
    by_status = (await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE]
    by_api = (await get(url, f"/?token={TOKEN}")).cookies[COOKIE]
    # The watchdog restarted with a new status token (same store): its old sessions end,
    # the API token's (unchanged) go on.
    _, restarted = await start(status_token="rotated-status-token-43")
    assert (await get(restarted, "/", headers=cookie_of(by_status))).status_code == 401
    assert (await get(restarted, "/", headers=cookie_of(by_api))).status_code == 200
    assert (await get(url, "/", headers=cookie_of(by_status))).status_code == 401  # deleted
    assert (await get(restarted, "/?token=rotated-status-token-43")).status_code == 303


async def test_sign_ins_are_rate_limited_and_sessions_capped_per_token(start) -> None:
    """One token holder made 13.6k sessions in 20 s: now at most ``per_token`` live (the
    oldest end first) and ``sign_ins_per_minute`` new ones, then a 429."""
    controller, url = await start(limits=SessionLimits(per_token=3, sign_ins_per_minute=5))
    admin = (await get(url, f"/?token={TOKEN}")).cookies[COOKIE]
    cookies = []
    for _ in range(5):  # the burst: five sign-ins, a second apart
        controller.now += 1
        cookies.append((await get(url, f"/?token={STATUS_TOKEN}")).cookies[COOKIE])
    refused = await get(url, f"/?token={STATUS_TOKEN}")
    assert refused.status_code == 429 and "set-cookie" not in refused.headers
    assert "Too many sign-ins" in refused.text and refused.headers["Retry-After"] == "8"
    alive = [(await get(url, "/", headers=cookie_of(c))).status_code for c in cookies]
    assert alive == [401, 401, 200, 200, 200]  # three kept per token, the oldest ended
    # Another token's sessions and sign-ins are its own.
    assert (await get(url, "/", headers=cookie_of(admin))).status_code == 200
    assert (await get(url, f"/?token={TOKEN}")).status_code == 303
    controller.now += 8  # one sign-in back (5 a minute: one per 12 s since the last)
    assert (await get(url, f"/?token={STATUS_TOKEN}")).status_code == 303
    assert (await get(url, f"/?token={STATUS_TOKEN}")).status_code == 429
