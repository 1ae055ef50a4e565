"""`watchdog deploy start --wait` / `deploy wait` against a real service: the CI gate."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from examples.stack import REPO, PromStack, WatchdogServer, start_watchdog

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gate_wd(
    prom_stack: PromStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WatchdogServer]:
    settings = {
        "config": str(REPO / "examples/demo/watchdog.yml"),
        "rules": str(REPO / "examples/demo/rules.yml"),
        "prometheus_url": prom_stack.prom_url,
        "confirm_for": "0",  # ends at rolled_back: confirmation has its own tests
    }
    with start_watchdog(tmp_path_factory.mktemp("gate") / "wd", settings) as wd:
        yield wd


def gate(wd: WatchdogServer, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    env.update(WATCHDOG_API_TOKEN=wd.token, WATCHDOG_URL=wd.url)
    argv = [sys.executable, "-m", "watchdog", "deploy", *args, "--poll", "0.3"]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )


def start_args(version: str, prom_stack: PromStack, window: str) -> list[str]:
    return [
        "start", "--service", "demo", "--version", version, "--previous-version", "v1",
        "--label", f"port={prom_stack.demo.port}", "--window", window, "--wait",
    ]  # fmt: skip


def calls_for(prom_stack: PromStack, window_id: str) -> list[dict[str, object]]:
    return [
        c
        for c in prom_stack.demo.rollback_calls()
        if str(c["headers"].get("Idempotency-Key", "")).startswith(window_id)  # type: ignore[union-attr]
    ]


def window_id(stdout: str) -> str:
    # render_started's first line: "opened window <id> for …"
    return stdout.split()[2]


def test_a_healthy_deploy_passes_the_gate_with_exit_0(
    gate_wd: WatchdogServer, prom_stack: PromStack
) -> None:
    prom_stack.demo.heal()
    proc = gate(gate_wd, *start_args("v2", prom_stack, "5s"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert "phase: watching" in lines and "phase: passed" in lines
    assert lines[-1] == "outcome: passed (exit 0)"
    assert calls_for(prom_stack, window_id(out)) == []


def test_a_bad_deploy_is_rolled_back_once_and_fails_the_gate_with_exit_3(
    gate_wd: WatchdogServer, prom_stack: PromStack
) -> None:
    prom_stack.demo.set_fault(error_ratio=0.5)
    try:
        proc = gate(gate_wd, *start_args("v3", prom_stack, "2m"))
        out, err = proc.communicate(timeout=90)
    finally:
        prom_stack.demo.heal()
    assert proc.returncode == 3, err + out
    lines = out.splitlines()
    assert lines[-1] == "outcome: rolled_back (exit 3)"
    assert any("rollback_succeeded" in line for line in lines)
    assert "phase: rolling_back" in lines or "phase: rolled_back" in lines
    assert len(calls_for(prom_stack, window_id(out))) == 1


def test_deploy_wait_on_a_window_aborted_by_someone_else_exits_6(
    gate_wd: WatchdogServer, prom_stack: PromStack
) -> None:
    prom_stack.demo.heal()
    window = gate_wd.deploy(service="demo", version="v4", previous_version="v1", window="2m",
                            labels={"port": str(prom_stack.demo.port)})  # fmt: skip
    proc = gate(gate_wd, "wait", window["id"])
    assert proc.stdout is not None
    assert (
        proc.stdout.readline()
        .strip()
        .endswith("window_opened: " + proc_first_message(gate_wd, window["id"]))
    )
    gate_wd.api(
        "POST", f"/api/v1/deployments/{window['id']}/abort", json={"reason": "ci"}
    ).raise_for_status()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 6, err
    assert out.splitlines()[-1] == "outcome: aborted (exit 6)"


def test_deploy_wait_gives_up_at_the_timeout_with_exit_7(
    gate_wd: WatchdogServer, prom_stack: PromStack
) -> None:
    window = gate_wd.deploy(service="demo", version="v5", previous_version="v1", window="2m",
                            labels={"port": str(prom_stack.demo.port)})  # fmt: skip
    proc = gate(gate_wd, "wait", window["id"], "--timeout", "1s")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    assert out.splitlines()[-1] == "outcome: still watching after 1s (exit 7)"
    gate_wd.api("POST", f"/api/v1/deployments/{window['id']}/abort", json={}).raise_for_status()


def test_deploy_wait_on_an_unknown_window_exits_1(gate_wd: WatchdogServer) -> None:
    proc = gate(gate_wd, "wait", "no-such-window")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "404" in err


def proc_first_message(wd: WatchdogServer, wid: str) -> str:
    return str(wd.window(wid)["events"][0]["message"])
