"""The ``watchdog`` command line, one module per command family.

``main`` parses and dispatches; ``serve`` runs the service and ``check`` validates rule
files; ``deploy`` is a client of a running watchdog's API; ``replay`` judges history.
"""

from watchdog.cli.common import CliError, host_port
from watchdog.cli.main import build_parser, main

__all__ = ["CliError", "build_parser", "host_port", "main"]
