"""The ``command`` step: run a program (a deploy CLI, a rollback script) by argv.

Never through a shell: ``argv`` goes straight to ``execve``, and each element is
rendered from the deployment's values, which ``render`` checks against the safe
pattern first. The child gets a minimal environment (``PATH``, ``HOME``, ``LANG`` from
ours, then the step's ``env``, then ``WATCHDOG_*`` variables describing the window) so
the watchdog's own secrets never leak into it.

Exit status conventions:

* ``0`` — success; the (combined stdout+stderr) output is kept, truncated.
* ``75`` — ``EX_TEMPFAIL`` from BSD ``sysexits.h``, "temporary failure, try again":
  a script says it could not act *yet* (a lock is held, the API is throttling), and
  the plan runner retries it with backoff.
* anything else — a permanent failure; the plan stops.

A step that outlives its timeout is killed with its whole process group (it runs in a
new session) and counts as transient.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import CommandStep
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.rulefile.template import render

EX_TEMPFAIL = 75
"""``sysexits.h``: temporary failure; the caller is invited to retry."""

OUTPUT_LIMIT = 4096
"""Bytes of combined output kept (the tail: a failing script says why at the end)."""

INHERITED_ENV = ("PATH", "HOME", "LANG")
"""The only variables a step inherits from the watchdog's own environment."""

_READ_CHUNK = 65536


def _identity(value: str) -> str:
    return value


class CommandExecutor:
    """Runs :class:`~watchdog.actions.spec.CommandStep` as a child process.

    ``environ`` is where ``PATH``/``HOME``/``LANG`` are inherited from (defaults to the
    process environment, read at each run).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    async def run(self, step: CommandStep, ctx: ActionContext) -> StepResult:
        """Run the program once; classify its exit status (see the module docstring)."""
        argv = [render(arg, ctx.variables, _identity) for arg in step.argv]
        return await run_argv(argv, self._env(step, ctx), step.cwd, step.timeout)

    def _env(self, step: CommandStep, ctx: ActionContext) -> dict[str, str]:
        source = os.environ if self._environ is None else self._environ
        env = {name: source[name] for name in INHERITED_ENV if name in source}
        env.update({k: render(v, ctx.variables, _identity) for k, v in step.env.items()})
        env.update(watchdog_env(step, ctx))
        return env


async def run_argv(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None, limit: float
) -> StepResult:
    """Run ``argv`` once (no shell), judge its exit status; shared by the CLI executors."""
    proc = await _spawn(argv, env, cwd)
    try:
        async with asyncio.timeout(limit):
            output = await _read_tail(proc, OUTPUT_LIMIT)
            code = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        raise TransientError(f"{argv[0]} timed out after {limit:g}s") from None
    except BaseException:
        await _kill_group(proc)  # cancelled: do not leave the child running
        raise
    return _judge(argv[0], code, output)


def watchdog_env(step: Any, ctx: ActionContext) -> dict[str, str]:
    """The ``WATCHDOG_*`` variables every command sees."""
    deployment = ctx.window.deployment
    return {
        "WATCHDOG_WINDOW_ID": ctx.window.id,
        "WATCHDOG_STEP": step.name,
        "WATCHDOG_ATTEMPT": str(ctx.attempt),
        "WATCHDOG_SERVICE": deployment.service,
        "WATCHDOG_ENVIRONMENT": deployment.environment,
        "WATCHDOG_VERSION": deployment.version,
        "WATCHDOG_PREVIOUS_VERSION": deployment.previous_version or "",
    }


async def _spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str | None
) -> asyncio.subprocess.Process:
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group, so a timeout kills it all
        )
    except FileNotFoundError as exc:
        missing = exc.filename or argv[0]
        raise PermanentError(f"cannot run {argv[0]}: {missing} not found") from None
    except (PermissionError, NotADirectoryError, ValueError) as exc:
        raise PermanentError(f"cannot run {argv[0]}: {exc}") from None
    except OSError as exc:  # EAGAIN, ENOMEM...: the machine may recover
        raise TransientError(f"cannot start {argv[0]}: {exc}") from None


async def _read_tail(proc: asyncio.subprocess.Process, limit: int) -> bytes:
    """Read the child's output to EOF, keeping only the last ``limit`` bytes."""
    assert proc.stdout is not None
    buf = bytearray()
    while chunk := await proc.stdout.read(_READ_CHUNK):
        buf.extend(chunk)
        if len(buf) > limit:
            del buf[: len(buf) - limit]
    return bytes(buf)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's process group and reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.shield(proc.wait())


def _judge(program: str, code: int, output: bytes) -> StepResult:
    text = output.decode("utf-8", "replace")
    if code == 0:
        return StepResult(output=text, data={"exit_code": 0})
    tail = text[-500:].strip() or "(no output)"
    if code == EX_TEMPFAIL:
        raise TransientError(f"{program} exited {code} (EX_TEMPFAIL, will retry): {tail}")
    if code < 0:
        raise PermanentError(f"{program} was killed by signal {-code}: {tail}")
    raise PermanentError(f"{program} exited {code}: {tail}")


KIND = StepKind("command", CommandStep, lambda p: CommandExecutor())
