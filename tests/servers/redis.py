"""A real Redis server for the tests, from the Debian package's ``redis-server``.

``start_redis(tmp_path)`` (context manager) -> :class:`RedisServer` on a free loopback
port, no persistence; ``stop()`` ends it early (e.g. in the middle of a window) and
``restart()`` starts it again on the same port with nothing in it (what a Redis without
persistence does after a crash).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.common import free_port, require_binary, stop, wait_for_port


@dataclass
class RedisServer:
    """A running redis-server."""

    port: int
    proc: subprocess.Popen[bytes]
    argv: list[str] = field(default_factory=list)
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server now."""
        stop(self.proc)

    def restart(self) -> None:
        """Stop it and start it again on the same port: empty, as after a crash."""
        self.stop()
        self.proc = _spawn(self.argv, self.log, self.port)


def _spawn(argv: list[str], log: Path | None, port: int) -> subprocess.Popen[bytes]:
    assert log is not None
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 30.0, proc)
    return proc


@contextlib.contextmanager
def start_redis(tmp_path: Path, *, maxmemory: str = "0") -> Iterator[RedisServer]:
    """redis-server on a free port, without persistence, stopped on exit."""
    binary = require_binary("redis-server")
    port = free_port()
    home = tmp_path / f"redis-{port}"
    home.mkdir()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(home), "--maxmemory", maxmemory]
    server = RedisServer(port, _spawn(argv, home / "redis.log", port), argv, home / "redis.log")
    try:
        yield server
    finally:
        server.stop()
