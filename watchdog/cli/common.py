"""What every ``watchdog`` subcommand shares: the error type and argument parsers."""

from __future__ import annotations

import argparse

DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """A failure to report in one line and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def host_port(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[::1]:8080`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def label(text: str) -> tuple[str, str]:
    """Parse ``--label key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


# --- serve and check ----------------------------------------------------------------


def duration(text: str) -> float:
    """A ``--timeout``-style duration: ``90``, ``30s``, ``5m``, ``1h30m``."""
    from watchdog.foundation.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
