"""Every terminal state of docs/outcomes.md, driven through a real `watchdog serve` with
a real Prometheus scraping the demo app, and checked the way a CI gate sees it: the exit
code of `deploy start --wait` / `deploy wait` (one test per row; rows already proven
elsewhere are named in the doc: passed, rolled_back, aborted, timeout in
tests/e2e/test_ci_gate.py, rolled_back and rollback_ineffective with confirmation in
tests/e2e/test_confirm_scrape.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.stack import REPO, PromStack, WatchdogServer, free_port, start_watchdog

pytestmark = pytest.mark.e2e


def config(home: Path, prometheus_url: str) -> dict[str, str]:
    step = {
        "name": "rollback-endpoint",
        "kind": "http",
        "method": "POST",
        "url": "http://127.0.0.1:{{ labels.port }}/rollback",
        "json": {"version": "{{ previous_version }}"},
        "retries": 0,
    }
    path = home / "config.yml"
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "rules": [str(REPO / "examples/demo/rules.yml")],
                "plans": {
                    "demo": {"steps": [step]},
                    "risky": {"steps": [step], "data_loss_risk": True},
                },
                "default_plan": "demo",
                "http_allowed_hosts": ["127.0.0.1"],
                "tick": "250ms",
                "confirm_for": "0",
                "prometheus_url": prometheus_url,
            }
        )
    )
    return {"config": str(path)}


@pytest.fixture(scope="module")
def wd(prom_stack: PromStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchdogServer]:
    home = tmp_path_factory.mktemp("outcomes") / "wd"
    with start_watchdog(home, config(home, prom_stack.prom_url)) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy(prom_stack: PromStack) -> Iterator[None]:
    prom_stack.demo.heal()
    yield
    prom_stack.demo.heal()


def cli(wd: WatchdogServer, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env.update(WATCHDOG_API_TOKEN=wd.token, WATCHDOG_URL=wd.url)
    argv = [sys.executable, "-m", "watchdog", "deploy", *args]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def start(wd: WatchdogServer, prom_stack: PromStack, version: str, *extra: str) -> list[str]:
    return [
        "start", "--service", "demo", "--version", version, "--previous-version", "v1",
        "--label", f"port={prom_stack.demo.port}", *extra, "--wait", "--poll", "0.3",
    ]  # fmt: skip


def gate(wd: WatchdogServer, args: list[str], timeout: float = 90) -> tuple[int, list[str]]:
    proc = cli(wd, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, [*out.splitlines(), f"stderr: {err}"]


def opened(wd: WatchdogServer, prom_stack: PromStack, version: str, window: str) -> str:
    body = {"service": "demo", "version": version, "previous_version": "v1", "window": window,
            "labels": {"port": str(prom_stack.demo.port)}}  # fmt: skip
    return str(wd.deploy(**body)["id"])


def test_passed_exit_0(wd: WatchdogServer, prom_stack: PromStack) -> None:
    code, lines = gate(wd, start(wd, prom_stack, "p1", "--window", "6s"))
    assert code == 0, lines
    assert "outcome: passed (exit 0)" in lines


def test_inconclusive_exit_9_when_prometheus_is_not_there(
    prom_stack: PromStack, tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # the first row: nothing listens
    with start_watchdog(tmp_path / "wd", config(tmp_path / "wd", nowhere)) as blind:
        code, lines = gate(blind, start(blind, prom_stack, "i1", "--window", "5s"))
    assert code == 9, lines
    assert "outcome: inconclusive (exit 9)" in lines
    [end] = [line for line in lines if "window_inconclusive" in line]
    assert "not judged for most of 5s: http-5xx-ratio: blind, judged 0 of" in end
    assert "cannot connect to Prometheus" in end and "check Prometheus" in end


def test_expired_while_held_exit_10(wd: WatchdogServer, prom_stack: PromStack) -> None:
    wid = opened(wd, prom_stack, "h1", "10s")
    held = wd.api("POST", f"/api/v1/deployments/{wid}/hold", json={"actor": "alice"})
    assert held.status_code == 200, held.text
    prom_stack.demo.set_fault(error_ratio=0.5)
    code, lines = gate(wd, ["wait", wid, "--poll", "0.3"])
    assert code == 10, lines
    assert "outcome: expired_while_held (exit 10)" in lines
    [end] = [line for line in lines if "window_expired_while_held" in line]
    assert "http-5xx-ratio firing when the window ended, held by api (alice)" in end
    assert prom_stack.demo.rollback_calls() == [] or all(
        not str(c["headers"].get("Idempotency-Key", "")).startswith(wid)
        for c in prom_stack.demo.rollback_calls()
    )


def test_would_have_rolled_back_exit_11(wd: WatchdogServer, prom_stack: PromStack) -> None:
    prom_stack.demo.set_fault(error_ratio=0.5)
    code, lines = gate(wd, start(wd, prom_stack, "s1", "--window", "10s", "--shadow"))
    assert code == 11, lines
    assert "outcome: would_have_rolled_back (exit 11)" in lines
    [end] = [line for line in lines if "window_would_have_rolled_back" in line]
    assert "would have rolled back: http-5xx-ratio fired at" in end


def test_rollback_failed_exit_4(wd: WatchdogServer, prom_stack: PromStack) -> None:
    prom_stack.demo.set_fault(error_ratio=0.5, rollback_status=400)
    code, lines = gate(wd, start(wd, prom_stack, "f1", "--window", "1m"))
    assert code == 4, lines
    assert "outcome: rollback_failed (exit 4)" in lines


def test_awaiting_approval_exit_5_then_approved_via_the_api(
    wd: WatchdogServer, prom_stack: PromStack
) -> None:
    prom_stack.demo.set_fault(error_ratio=0.5)
    args = start(wd, prom_stack, "a1", "--window", "2m", "--plan", "risky", "--timeout", "20s")
    code, lines = gate(wd, args)
    assert code == 5, lines
    assert lines[-2] == "outcome: still awaiting_approval after 20s (exit 5)"
    wid = next(line.split()[2] for line in lines if line.startswith("opened window"))
    approved = wd.api("POST", f"/api/v1/deployments/{wid}/approve", json={"actor": "bob"})
    assert approved.status_code == 200, approved.text
    code, lines = gate(wd, ["wait", wid, "--poll", "0.3"])
    assert code == 3, lines
    events = wd.window(wid)["events"]
    [asked] = [e for e in events if e["kind"] == "approval_needed"]
    [yes] = [e for e in events if e["kind"] == "approved"]
    assert yes["data"]["approval_needed"] == asked["seq"]


def test_superseded_exit_6(wd: WatchdogServer, prom_stack: PromStack) -> None:
    first = opened(wd, prom_stack, "u1", "2m")
    waiting = cli(wd, "wait", first, "--poll", "0.3")
    second = opened(wd, prom_stack, "u2", "2m")
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 6, out + err
    assert out.splitlines()[-1] == "outcome: superseded (exit 6)"
    wd.api("POST", f"/api/v1/deployments/{second}/abort", json={}).raise_for_status()
