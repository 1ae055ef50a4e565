"""``watchdog deploy …`` against the real web app (with the in-memory Controller)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from aiohttp import web

from tests.fakes import TOKEN, FakeController, Harness, serve
from tests.servers.common import free_port
from watchdog.cli.common import host_port
from watchdog.cli.main import main
from watchdog.foundation.model import EventKind, WindowPhase


@dataclass
class Live:
    """A web app served from a background event loop."""

    url: str
    controller: FakeController


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    harness = Harness()
    runner: web.AppRunner
    runner, url = asyncio.run_coroutine_threadsafe(serve(harness.app()), loop).result(10)
    monkeypatch.setenv("WATCHDOG_API_TOKEN", TOKEN)
    monkeypatch.setenv("WATCHDOG_URL", url)
    try:
        yield Live(url, harness.controller)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def start(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    code, out, err = run(
        capsys, "deploy", "--json", "start", "--service", "checkout", "--version", "1.4.2", *extra
    )
    assert code == 0, err
    window_id: str = json.loads(out)["id"]
    return window_id


def test_start_prints_id_and_url(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "deploy", "start", "--service", "checkout", "--version", "1.4.2",
        "--previous-version", "1.4.1", "--environment", "staging",
        "--label", "region=eu-west-1", "--window", "45m", "--plan", "helm-undo",
    )  # fmt: skip
    assert code == 0, err
    [window_id] = live.controller.windows
    window = live.controller.windows[window_id]
    assert window_id in out
    lines = out.splitlines()
    assert lines[1].startswith("page: http") and lines[1].endswith(f"/deployments/{window_id}")
    assert lines[2].startswith("api:  http")
    assert lines[2].endswith(f"/api/v1/deployments/{window_id}")
    assert "45m" in out
    assert window.deployment.labels == {"region": "eu-west-1"}
    assert window.deployment.environment == "staging"
    assert window.deployment.plan == "helm-undo"
    assert window.ends_at - window.started_at == 2700


def test_start_in_shadow_with_a_confirmation_time(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "deploy", "start", "--service", "checkout", "--version", "1.4.2",
        "--shadow", "--confirm-for", "10m",
    )  # fmt: skip
    assert code == 0, err
    [window] = live.controller.windows.values()
    assert window.shadow and window.confirm_for == 600
    assert "in shadow mode" in out
    live.controller.rules[0] = replace(live.controller.rules[0], shadow=True)
    code, out, err = run(capsys, "deploy", "status", window.id)
    assert code == 0, err
    assert "shadow mode: nothing acts on its own" in out
    assert "http-5xx-ratio (shadow)" in out
    code, out, err = run(capsys, "deploy", "list")
    assert code == 0 and "watching (shadow)" in out
    confirming = window.with_phase(WindowPhase.CONFIRMING, live.controller.now)
    live.controller.windows[window.id] = confirming
    code, out, err = run(capsys, "deploy", "status", window.id)
    assert "phase: confirming" in out and "confirming the recovery until" in out
    assert "time left: 10m" in out  # counts down to the end of the confirmation


def test_status_renders_rules_and_events(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    window_id = start(capsys)
    live.controller.record(
        window_id, EventKind.RULE_PENDING, "5xx ratio 0.07\x1b[31m above 5%", rule="http-5xx-ratio"
    )
    code, out, err = run(capsys, "deploy", "status", window_id)
    assert code == 0, err
    assert "checkout 1.4.2" in out and "phase: watching" in out and "time left: 30m" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("RULE "))
    assert header.split() == [
        "RULE", "VERDICT", "VALUE", "THRESHOLD", "FOR", "LAST", "EVAL", "RECENT"
    ]  # fmt: skip
    row = lines[lines.index(header) + 1]
    # pending for 15 s of the rule's 1 m `for`, as of its last evaluation
    assert row.split()[:8] == [
        "http-5xx-ratio", "pending", "0.0712", ">", "0.05", "15s", "of", "1m"
    ]  # fmt: skip
    assert "window_opened" in out
    assert "rule_pending" in out and "5xx ratio 0.07" in out
    assert "\x1b" not in out  # escape sequences from watched systems never reach the terminal


def test_json_output_is_valid_json(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    window_id = start(capsys)
    code, out, _ = run(capsys, "deploy", "status", window_id, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["window"]["id"] == window_id and data["rules"][0]["name"] == "http-5xx-ratio"
    code, out, _ = run(capsys, "deploy", "--json", "list")
    assert code == 0 and [w["id"] for w in json.loads(out)["windows"]] == [window_id]


def test_list_and_actions(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    first = start(capsys)
    second = start(capsys, "--environment", "staging")
    code, out, err = run(capsys, "deploy", "hold", first, "--reason", "looking", "--actor", "alice")
    assert code == 0, err
    assert "held" in out
    assert live.controller.calls[-1] == ("hold", first, "api (alice)", "looking")
    code, out, _ = run(capsys, "deploy", "list", "--phase", "held")
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["ID", "SERVICE", "ENV", "VERSION", "PHASE"]
    assert first in out and second not in out
    code, out, _ = run(capsys, "deploy", "list", "--service", "checkout")
    assert first in out and second in out
    assert run(capsys, "deploy", "rollback", first)[0] == 0
    assert live.controller.windows[first].phase == WindowPhase.ROLLED_BACK


def test_api_errors_exit_1(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "deploy", "status", "doesnotexist")
    assert code == 1 and out == ""
    assert "404" in err and "no window doesnotexist" in err
    window_id = start(capsys)
    assert run(capsys, "deploy", "abort", window_id)[0] == 0
    code, _, err = run(capsys, "deploy", "rollback", window_id)
    assert code == 1 and "409" in err and "aborted" in err
    code, _, err = run(
        capsys, "deploy", "start", "--service", "checkout", "--version", '1"}) or vector(1'
    )
    assert code == 1 and "version" in err


def test_wrong_token_exit_1(
    live: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_API_TOKEN", "not-the-token")
    code, _, err = run(capsys, "deploy", "list")
    assert code == 1 and "401" in err
    assert "not-the-token" not in err
    assert "WATCHDOG_API_TOKEN" in err  # what to do about it


def test_unreachable_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_URL", raising=False)
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "deploy", "--url", url, "status", "abc")
    assert code == 1 and out == ""
    assert f"cannot reach watchdog at {url}" in err
    code, _, err = run(capsys, "deploy", "list", "--url", "http://user:pw@127.0.0.1:1")
    assert code == 1 and "cannot reach watchdog" in err and "pw" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "deploy", "start", "--service", "x")[0] == 2
    assert (
        run(capsys, "deploy", "start", "--service", "x", "--version", "1", "--label", "novalue")[0]
        == 2
    )
    assert run(capsys, "deploy", "list", "--phase", "exploded")[0] == 2
    assert run(capsys, "serve", "--listen", "nope")[0] == 2
    assert run(capsys)[0] == 2
    assert run(capsys, "deploy")[0] == 2
    assert run(capsys, "--help")[0] == 0


def test_host_port() -> None:
    assert host_port("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert host_port("[::1]:9000") == ("::1", 9000)


def test_serve_reports_invalid_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_API_TOKEN", raising=False)
    monkeypatch.delenv("WATCHDOG_CONFIG", raising=False)
    monkeypatch.setenv("WATCHDOG_STORE_URL", "mysql://root:hunter2@db/watchdog")
    monkeypatch.setenv("WATCHDOG_PROMETHEUS_RETRIES", "99")
    code, _, err = run(capsys, "serve", "--listen", "0.0.0.0:8080")
    assert code == 2
    assert "invalid settings" in err
    assert "WATCHDOG_PROMETHEUS_RETRIES (environment): must be at most 5" in err
    assert "hunter2" not in err


def test_python_dash_m() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "watchdog", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "watchdog" in done.stdout
