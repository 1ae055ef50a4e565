"""A real Redis server for the tests, from the Debian package's ``redis-server``.

``start_redis(tmp_path)`` (context manager) -> :class:`RedisServer` on a free loopback
port, no persistence; ``stop()`` ends it early (e.g. in the middle of a window).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers.common import free_port, require_binary, running, stop


@dataclass
class RedisServer:
    """A running redis-server."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server now."""
        stop(self.proc)


@contextlib.contextmanager
def start_redis(tmp_path: Path, *, maxmemory: str = "0") -> Iterator[RedisServer]:
    """redis-server on a free port, without persistence, stopped on exit."""
    binary = require_binary("redis-server")
    port = free_port()
    home = tmp_path / f"redis-{port}"
    home.mkdir()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(home), "--maxmemory", maxmemory]
    with running(argv, home / "redis.log", port) as proc:
        yield RedisServer(port, proc)
