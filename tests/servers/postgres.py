"""A real PostgreSQL server for the tests, from the Debian package's binaries.

``postgres_server`` (session): a throwaway cluster in a temp dir on a free loopback
port, trust auth, fsync off. ``postgres_dsn`` (function): a fresh database per test,
dropped afterwards. Never touches a PostgreSQL already running on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.common import free_port, running

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Where the test cluster listens, and how to reach it."""

    host: str
    port: int
    user: str
    bin_dir: Path
    socket_dir: Path
    log_file: Path | None = None  # the server's stderr: its real log lines land here

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq/asyncpg URL for ``dbname`` on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one SQL command as the superuser; returns psql's output."""
        argv = [str(self.bin_dir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname, "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}\n{done.stderr}")
        return done.stdout


def _bin_dir() -> Path:
    """The newest installed server version's bin directory."""
    found: list[tuple[int, Path]] = []
    if PG_ROOT.is_dir():
        for d in PG_ROOT.iterdir():
            binaries = d / "bin"
            if re.fullmatch(r"\d+", d.name) and (binaries / "initdb").exists():
                found.append((int(d.name), binaries))
    if not found:
        pytest.fail(f"PostgreSQL server binaries not found under {PG_ROOT}: run make system-deps")
    return max(found)[1]


def _as_server_user(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser") is None:
        pytest.fail("running as root needs `runuser` (util-linux) to start PostgreSQL")
    return ["runuser", "-u", SUPERUSER, "--", *argv]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=SUPERUSER, group=SUPERUSER)


def _initdb(bin_dir: Path, data: Path, cwd: Path) -> None:
    argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
    argv += ["-E", "UTF8", "--no-locale", "--no-sync"]
    done = subprocess.run(
        _as_server_user(argv), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")


def _wait_ready(server: PostgresServer, timeout: float = 30.0) -> None:
    """The port opens before the server accepts queries: poll until one succeeds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.psql("SELECT 1")
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def start_postgres(
    settings: Sequence[str] = (),
) -> Iterator[tuple[PostgresServer, subprocess.Popen[bytes]]]:
    """A new cluster on a free port; stopped (and its files removed) on exit.

    ``pg_stat_statements`` is preloaded so a database can ``CREATE EXTENSION`` it;
    ``settings`` (``name=value``) are added to the server's command line.
    """
    bin_dir = _bin_dir()
    # Not under pytest's basetemp: that is private to root, and the server runs as
    # `postgres`, which must be able to reach its data directory.
    base = Path(tempfile.mkdtemp(prefix="watchdog-pg-"))
    try:
        _own(base)
        data, sockets = base / "data", base / "sock"
        sockets.mkdir()
        _own(sockets)
        _initdb(bin_dir, data, base)
        port = free_port()
        server = PostgresServer("127.0.0.1", port, SUPERUSER, bin_dir, sockets, base / "server.log")
        argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={sockets}",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
            "shared_preload_libraries=pg_stat_statements",
            "pg_stat_statements.track=all",
            *settings,
        ):
            argv += ["-c", setting]
        with running(_as_server_user(argv), base / "server.log", port, cwd=base) as proc:
            _wait_ready(server)
            try:
                yield server, proc
            finally:
                _fast_shutdown(proc)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the whole test session."""
    with start_postgres() as (server, _proc):
        yield server


def _fast_shutdown(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to leave."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):  # `running` kills what is left
            proc.wait(15)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A DSN to a brand-new, empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    postgres_server.psql(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.dsn(name)
    finally:
        postgres_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
