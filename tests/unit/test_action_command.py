from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from watchdog.actions.base import ActionContext
from watchdog.actions.command import CommandExecutor
from watchdog.actions.spec import CommandStep
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Deployment, Window, WindowPhase

PY = sys.executable


def context(version: str = "v2.1.0", attempt: int = 1) -> ActionContext:
    deployment = Deployment(
        service="api", environment="prod", version=version, previous_version="v2.0.9"
    )
    window = Window("win42", deployment, WindowPhase.ROLLING_BACK, 0.0, 1800.0, 0.0)
    return ActionContext(window=window, variables=deployment.template_vars(), attempt=attempt)


def step(*argv: str, **kw: Any) -> CommandStep:
    return CommandStep.model_validate({"kind": "command", "name": "rollback", "argv": argv, **kw})


DUMP_ARGV = "import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], 'w'))"


async def test_argv_passed_verbatim_no_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    hostile = [
        "$(touch pwned1)",
        "; touch pwned2",
        "`touch pwned3`",
        "| touch pwned4",
        "*",
        "$HOME",
        "a b  c",
    ]
    s = step(
        PY, "-c", DUMP_ARGV, str(out), "--to={{ previous_version }}", *hostile, cwd=str(tmp_path)
    )
    result = await CommandExecutor().run(s, context())
    assert json.loads(out.read_text()) == ["--to=v2.0.9", *hostile]
    assert result.data == {"exit_code": 0}
    assert not any(tmp_path.glob("pwned*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argv.json"]


async def test_unsafe_template_value_is_permanent_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    s = step(PY, "-c", "import sys; open(sys.argv[1], 'w')", str(marker), "{{ version }}")
    with pytest.raises(PermanentError, match="not allowed"):
        await CommandExecutor().run(s, context(version="1; rm -rf /"))
    assert not marker.exists()


async def test_output_captured_combined_and_truncated() -> None:
    code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    result = await CommandExecutor().run(step(PY, "-c", code), context())
    assert "to stdout" in result.output and "to stderr" in result.output

    code = "import sys; sys.stdout.write('a' * 10000 + 'END')"
    result = await CommandExecutor().run(step(PY, "-c", code), context())
    assert len(result.output.encode()) == 4096 and result.output.endswith("END")


async def test_environment_is_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_API_TOKEN", "super-secret-token")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    s = step(PY, "-c", code, env={"TARGET": "{{ previous_version }}"})
    result = await CommandExecutor().run(s, context(attempt=3))
    env = json.loads(result.output)
    assert "WATCHDOG_API_TOKEN" not in env
    assert env["TARGET"] == "v2.0.9"
    assert env["WATCHDOG_WINDOW_ID"] == "win42"
    assert env["WATCHDOG_STEP"] == "rollback"
    assert env["WATCHDOG_ATTEMPT"] == "3"
    assert env["WATCHDOG_SERVICE"] == "api"
    assert env["WATCHDOG_VERSION"] == "v2.1.0"
    assert env["WATCHDOG_PREVIOUS_VERSION"] == "v2.0.9"
    allowed = {"PATH", "HOME", "LANG", "TARGET", "LC_CTYPE", "__CF_USER_TEXT_ENCODING"}
    assert {k for k in env if not k.startswith("WATCHDOG_")} <= allowed
    assert env.get("PATH") == os.environ.get("PATH")


async def test_exit_1_is_permanent_with_code_and_tail() -> None:
    code = "import sys; print('cannot find release v1'); sys.exit(1)"
    with pytest.raises(PermanentError, match=r"exited 1: cannot find release v1"):
        await CommandExecutor().run(step(PY, "-c", code), context())


async def test_exit_75_is_transient() -> None:
    code = "import sys; print('lock held'); sys.exit(75)"
    with pytest.raises(TransientError, match="EX_TEMPFAIL"):
        await CommandExecutor().run(step(PY, "-c", code), context())


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # The child starts a grandchild and both sleep: both must be gone after the timeout.
    code = (
        "import os, subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "open(sys.argv[1], 'w').write(f'{os.getpid()} {g.pid}')\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 1s"):
        await CommandExecutor().run(step(PY, "-c", code, str(pidfile), timeout=1.0), context())
    assert time.monotonic() - started < 5
    for pid in map(int, pidfile.read_text().split()):
        assert not _alive(pid), f"process {pid} survived the timeout"


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        if _zombie(pid):
            return False  # killed; waiting for its (non-test) parent to reap it
        time.sleep(0.02)
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


async def test_missing_executable_is_permanent() -> None:
    with pytest.raises(PermanentError, match="not found"):
        await CommandExecutor().run(step("/nonexistent/rollback-tool", "--now"), context())
    with pytest.raises(PermanentError, match="not found"):
        await CommandExecutor().run(step("no-such-rollback-tool-xyz"), context())


async def test_bad_cwd_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError):
        await CommandExecutor().run(step(PY, "-c", "", cwd=str(tmp_path / "nope")), context())
