"""The ``watchdog`` command: ``serve``, ``check``, ``deploy …`` and ``replay``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watchdog import __version__
from watchdog.cli.check import add_check
from watchdog.cli.common import CliError, host_port
from watchdog.cli.deploy import add_deploy
from watchdog.cli.replay import add_replay
from watchdog.cli.serve import cmd_serve


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"watchdog: {exc}", file=sys.stderr)
        return exc.code


def build_parser() -> argparse.ArgumentParser:
    """The whole argument parser."""
    parser = argparse.ArgumentParser(
        prog="watchdog", description="Guards the minutes after a deploy; rolls back once."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the service (settings from WATCHDOG_* env)")
    serve.add_argument("--rules", nargs="+", type=Path, metavar="PATH", help="rule files/dirs")
    serve.add_argument("--listen", type=host_port, metavar="HOST:PORT", help="listen address")
    serve.set_defaults(run=cmd_serve)

    add_check(sub)
    add_deploy(sub)
    add_replay(sub)
    return parser
