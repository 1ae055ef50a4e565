"""The service as a process: run the built app until SIGINT/SIGTERM, reload on SIGHUP;
the soft open-file limit is raised to the hard one first."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from pathlib import Path

import structlog

from watchdog.app import App
from watchdog.lifecycle.reload import ReloadResult
from watchdog.plumbing.logs import configure_logging
from watchdog.settings import Settings
from watchdog.web.listen import raise_nofile_limit

log = structlog.get_logger("watchdog.process")


YOUNG = 50_000  # objects allocated between two young collections (CPython's default: 700)
MIDDLE = 50  # young collections between two middle ones (default: 10)
ELDEST = 100  # middle collections between two full ones, at most (default: 10)


def freeze_startup_heap() -> None:
    """Exclude everything built at startup from the garbage collector's full passes,
    and space the passes out.

    Otherwise each full collection walks every long-lived object (schemas, routes,
    libraries) and stalls the event loop for tens of milliseconds: the receiver's p99
    on 500-alert deliveries triples (bench/alertmanager_receiver.py). And the watch
    loop's objects live one rule interval (each rule state, each shared answer is
    replaced every 15 s), long enough to reach the oldest generation: with CPython's
    thresholds a full pass over every window's state ran every second, 22 % of the
    process at 3,000 windows (bench/scale.py), each pass a 0.2 s stall; at 6,000 the
    middle passes were 40 ms each, 112 in a minute. Almost all of that garbage is freed
    by reference counting; the passes only find cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, ELDEST)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    app = App(settings)
    try:
        await app.start()
    except BaseException as exc:
        log.error("watchdog cannot start", error=f"{type(exc).__name__}: {exc}")
        # Close what was opened before the failure (the store's thread, the pools):
        # left running, they kept the process alive after "cannot start" forever.
        await app.stop()
        raise
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[ReloadResult]] = set()

    def reload() -> None:
        task = asyncio.create_task(app.reload())
        reloads.add(task)  # keep a reference until it is done
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        await stop.wait()
    finally:
        await app.stop()


def run_server(settings: Settings) -> None:
    """Blocking entry point used by ``watchdog serve``."""
    configure_logging(settings.log_level, settings.log_format, settings.secrets())
    for warning in startup_warnings(settings, Path.cwd(), os.environ.get("WATCHDOG_CONFIG")):
        log.warning(warning)
    before, after = raise_nofile_limit()
    if after != before:
        log.info("open-file limit raised", soft_before=before, soft=after)
    asyncio.run(serve(settings))


def startup_warnings(settings: Settings, cwd: Path, config: str | None) -> list[str]:
    """What an operator should know before trusting the settings (issue 25 low findings).

    Precedence, highest first: environment variables, then ``./.env``, then the
    ``WATCHDOG_CONFIG`` file. A ``.env`` left in the working directory therefore
    overrides the config file (plans and API token included): say so. Settings and
    store files others can read hold secrets: say that too.
    """
    out = []
    dotenv = cwd / ".env"
    if dotenv.is_file():
        over = f" over the values of {config}" if config else ""
        out.append(f"{dotenv} is read and its WATCHDOG_* values take precedence{over}")
    store = settings.store_url.get_secret_value()
    files = [Path(p) for p in (config, str(dotenv) if dotenv.is_file() else None) if p]
    if store.startswith("sqlite:///") and ":memory:" not in store:
        files.append(Path(store.removeprefix("sqlite:///")))
    for path in files:
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o004:
                out.append(f"{path} is readable by every user: it holds secrets (chmod o-r)")
    return out
