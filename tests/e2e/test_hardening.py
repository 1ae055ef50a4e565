"""Issue 13 items 1 and 2 against a real ``watchdog serve`` process.

1. A weak secret refuses to start: exit 2, the setting named, never its value.
2. 1,100 idle connections under ``ulimit -n 1024``: ``/healthz`` answers, the idle
   connections are closed at the head deadline, and a rule firing meanwhile rolls back
   exactly once (its command step still finds the descriptors it needs).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from examples.stack import REPO, free_port, running
from tests.fakes import serve
from tests.rules import rules as rule_file

pytestmark = pytest.mark.e2e

TOKEN = "hardening-token-0123456789"
IDLE = 1100
NOFILE = 1024


def serve_argv() -> list[str]:
    return [sys.executable, "-m", "watchdog", "serve"]


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    file = rule_file(tmp_path).group("g", None).http("up", "http://127.0.0.1:9/x", action="notify")
    env.update(WATCHDOG_RULES=str(file.write()), WATCHDOG_STORE_URL=f"sqlite:///{tmp_path}/wd.db")
    return env


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("WATCHDOG_API_TOKEN", "", "api_token (WATCHDOG_API_TOKEN) is empty"),
        ("WATCHDOG_ALERTMANAGER_TOKEN", "   ", "is only whitespace"),
        (
            "WATCHDOG_API_TOKEN",
            "change-me-to-a-long-random-string",
            "api_token (WATCHDOG_API_TOKEN) is a placeholder",
        ),
        (
            "WATCHDOG_NOTIFY__WEBHOOK_SECRET",
            "tiny-secret-9",
            "notify.webhook_secret (WATCHDOG_NOTIFY__WEBHOOK_SECRET) is shorter than 16",
        ),
        (
            "WATCHDOG_STORE_URL",
            "postgresql://wd:pw-7z@127.0.0.1:1/wd",
            "store_url (WATCHDOG_STORE_URL) carries a password that is shorter than 16",
        ),
    ],
)
def test_serve_refuses_a_weak_secret_naming_the_setting(
    tmp_path: Path, name: str, value: str, why: str
) -> None:
    env = {**base_env(tmp_path), name: value, "WATCHDOG_LISTEN_HOST": "0.0.0.0"}
    if name != "WATCHDOG_API_TOKEN":
        env["WATCHDOG_API_TOKEN"] = TOKEN
    if name == "WATCHDOG_NOTIFY__WEBHOOK_SECRET":
        env["WATCHDOG_NOTIFY__WEBHOOK_URL"] = "http://127.0.0.1:9/hook"
    result = subprocess.run(
        [*serve_argv(), "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2, result.stderr
    assert why in result.stderr
    assert "Traceback" not in result.stderr
    if value.strip():
        secret = value.split(":")[2].split("@")[0] if "://" in value else value
        assert secret not in result.stderr + result.stdout


@dataclass
class Target:
    """The watched service: /health we break."""

    status: int = 200

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": self.status == 200}, status=self.status)


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    t = Target()
    app = web.Application()
    app.router.add_get("/health", t.health)
    runner, url = await serve(app)
    yield t, url
    await runner.cleanup()


def _limit_files() -> None:  # runs in the child before exec: `ulimit -n 1024`
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    """True once the server closed the connection (EOF or reset) within ``within``."""
    try:
        while await asyncio.wait_for(reader.read(4096), timeout=within):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _soft_limit_only() -> None:  # `ulimit -Sn 1024`: the hard limit stays
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    )


def test_serve_raises_the_soft_open_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= NOFILE:
        pytest.skip(f"the hard open-file limit is {hard}: nothing to raise")
    port = free_port()
    env = {**base_env(tmp_path), "WATCHDOG_API_TOKEN": TOKEN, "WATCHDOG_LISTEN_PORT": str(port)}
    log = tmp_path / "watchdog.log"
    with running(serve_argv(), log, port, env=env, cwd=REPO, preexec_fn=_soft_limit_only) as proc:
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
    [line] = [x for x in limits.splitlines() if x.startswith("Max open files")]
    soft, hard_seen = line.split()[3:5]
    assert soft == hard_seen != str(NOFILE), line
    assert '"open-file limit raised"' in log.read_text()


async def test_idle_connections_under_ulimit_do_not_stop_health_or_the_rollback(
    tmp_path: Path, target: tuple[Target, str]
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE + 200:
        pytest.skip(f"this test opens {IDLE} sockets; the hard open-file limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, IDLE + 200), hard))
    t, url = target
    marker = tmp_path / "rolled-back"
    step = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write('x\\n')"]
    plan = {"steps": [{"name": "undo", "kind": "command", "argv": [*step, str(marker)]}]}
    rules = rule_file(tmp_path, "health.yml").group("api", "200ms")
    rules.http("health", f"{url}/health", timeout="1s", action="rollback", severity="critical")
    port = free_port()
    env = {
        **base_env(tmp_path),
        "WATCHDOG_RULES": str(rules.write()),
        "WATCHDOG_API_TOKEN": TOKEN,
        "WATCHDOG_LISTEN_PORT": str(port),
        "WATCHDOG_TICK": "0.2",
        "WATCHDOG_HTTP_HEADER_TIMEOUT": "2s",
        "WATCHDOG_PLANS": json.dumps({"main": plan}),
        "WATCHDOG_DEFAULT_PLAN": "main",
        "WATCHDOG_CONFIRM_FOR": "0",  # rolled_back at once, no recovery watch after it
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "watchdog.log"
    with running(serve_argv(), log, port, env=env, cwd=REPO, preexec_fn=_limit_files) as proc:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=5) as api:
            opened = await api.post("/api/v1/deployments", json={"service": "api", "version": "v2"})
            assert opened.status_code == 201, opened.text
            wid = opened.json()["id"]
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE)]
        for _, writer in idle[::2]:  # half of them send half a header, then nothing
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # The cap keeps descriptors free for the store, the probe and the rollback.
        in_use = len(os.listdir(f"/proc/{proc.pid}/fd"))
        assert in_use < NOFILE - 100, in_use
        t.status = 500
        began = time.monotonic()
        async with httpx.AsyncClient(base_url=base, headers=auth, timeout=5) as fresh:
            health = await fresh.get("/healthz")  # a new connection, while 1,100 are open
        assert health.status_code == 200
        assert time.monotonic() - began < 10, "/healthz is slow behind idle connections"
        deadline = time.monotonic() + 30
        phase = "watching"
        while phase not in {"rolled_back", "rollback_failed"}:
            assert time.monotonic() < deadline, f"still {phase}"
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=base, headers=auth, timeout=5) as api:
                got = await api.get(f"/api/v1/deployments/{wid}")
                assert got.status_code == 200, got.text
                phase = got.json()["window"]["phase"]
        assert phase == "rolled_back"
        assert marker.read_text() == "x\n"  # the command ran exactly once
        closed = await asyncio.gather(*(_closed(r, 10) for r, _ in idle))
        assert all(closed), f"{closed.count(False)} idle connections still open"
        for _, writer in idle:
            writer.close()
        assert proc.poll() is None
    text = log.read_text(errors="replace")
    assert "Too many open files" not in text and "Traceback" not in text
    levels = [json.loads(line).get("level") for line in text.splitlines() if line.startswith("{")]
    assert "error" not in levels
    assert levels.count("warning") < 20, "a flood of idle connections must not flood the log"


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])


async def test_slow_unsigned_slack_bodies_cost_little_and_end_at_the_deadline(
    tmp_path: Path,
) -> None:
    """The issue's 600 slow unauthenticated bodies (RSS 83 -> 828 MB, never answered)."""
    port = free_port()
    env = {
        **base_env(tmp_path),
        "WATCHDOG_API_TOKEN": TOKEN,
        "WATCHDOG_LISTEN_PORT": str(port),
        "WATCHDOG_HTTP_BODY_TIMEOUT": "2s",
        "WATCHDOG_NOTIFY__SLACK_BOT_TOKEN": "xoxb-0123456789-abcdefghijklmnop",
        "WATCHDOG_NOTIFY__SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99aaaeee85a5",
        "WATCHDOG_NOTIFY__SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    log = tmp_path / "watchdog.log"
    with running(serve_argv(), log, port, env=env, cwd=REPO) as proc:
        before = _rss_kib(proc.pid)
        now = int(time.time())
        plausible = f"X-Slack-Request-Timestamp: {now}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
        conns = []
        for i in range(600):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = plausible if i % 2 else ""  # half send no signature at all
            writer.write(
                f"POST /slack/interactions HTTP/1.1\r\nHost: x\r\n{head}"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 131072\r\n\r\n".encode()
                + b"a" * 65536  # half the announced body, then nothing
            )
            conns.append((reader, writer))
        grown = _rss_kib(proc.pid) - before
        answers = await asyncio.gather(*(_first_line(r, 10) for r, _ in conns))
        grown = max(grown, _rss_kib(proc.pid) - before)
        for _, writer in conns:
            writer.close()
        assert proc.poll() is None
    unsigned, signed = answers[0::2], answers[1::2]
    assert all(a.startswith(b"HTTP/1.1 401") for a in unsigned), set(unsigned)
    # A plausible-looking request is read up to the body deadline, then dropped.
    assert all(a in {b"", b"HTTP/1.1 408"} for a in signed), set(signed)
    assert grown < 150 * 1024, f"RSS grew {grown} KiB"
    text = log.read_text(errors="replace")  # a dropped client is not an error to log
    assert "unhandled error" not in text and "Traceback" not in text


async def _first_line(reader: asyncio.StreamReader, within: float) -> bytes:
    """The status line's first 12 bytes, or b"" when the server closed without one."""
    try:
        line = await asyncio.wait_for(reader.readline(), timeout=within)
    except ConnectionResetError:
        return b""
    return line[:12]
