"""The ``watchdog`` command: ``serve``, ``check``, ``deploy …`` and ``replay``.

``deploy`` talks to a running watchdog over its HTTP API. The URL comes from ``--url``
or ``WATCHDOG_URL``; the token only ever from ``WATCHDOG_API_TOKEN`` (never a flag, so
it stays out of shell history and process listings).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from pydantic import ValidationError

from watchdog import __version__, cli_render
from watchdog.cli_replay import add_replay
from watchdog.cli_watch import positive, watch_status
from watchdog.errors import ConfigError, WatchdogError
from watchdog.model import WindowPhase
from watchdog.rulefile.template import SAFE_VALUE

DEFAULT_URL = "http://127.0.0.1:8080"
ACTIONS = ("hold", "resume", "rollback", "abort")
DEPLOYMENTS = "/api/v1/deployments"


class CliError(Exception):
    """A failure to report in one line and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


# --- parser -------------------------------------------------------------------------


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

    check = sub.add_parser("check", help="validate rule files (promtool style)")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.set_defaults(run=cmd_check)

    _add_deploy(sub)
    add_replay(sub)
    return parser


def _client_options(suppress: bool) -> argparse.ArgumentParser:
    # Accepted both before and after the deploy subcommand; SUPPRESS keeps the
    # subcommand's absent flag from overwriting one given earlier.
    default: Any = argparse.SUPPRESS if suppress else None
    opts = argparse.ArgumentParser(add_help=False)
    opts.add_argument(
        "--url",
        default=default,
        help=f"watchdog URL (env WATCHDOG_URL, "
        f"default {DEFAULT_URL}); token from env WATCHDOG_API_TOKEN",
    )
    opts.add_argument("--json", action="store_true", default=default, help="print raw JSON")
    return opts


def _add_deploy(sub: Any) -> None:
    deploy = sub.add_parser(
        "deploy", help="open and manage watch windows", parents=[_client_options(False)]
    )
    deploy.set_defaults(run=lambda _args: _usage(deploy))
    dsub = deploy.add_subparsers(title="deploy commands", metavar="COMMAND")
    common = [_client_options(True)]

    start = dsub.add_parser("start", help="open a window for a deploy", parents=common)
    start.add_argument("--service", required=True)
    start.add_argument("--version", required=True)
    start.add_argument("--environment")
    start.add_argument("--previous-version")
    start.add_argument("--label", action="append", type=label, default=[], metavar="K=V")
    start.add_argument("--window", metavar="DURATION", help="e.g. 30m (default: service's)")
    start.add_argument("--plan")
    start.set_defaults(run=cmd_start)

    status = dsub.add_parser("status", help="a window, its rules and events", parents=common)
    status.add_argument("id")
    status.add_argument("--watch", action="store_true", help="redraw until the window ends")
    status.add_argument("--interval", type=positive, default=2.0, help="seconds (--watch)")
    status.set_defaults(run=cmd_status)

    ls = dsub.add_parser("list", help="windows, newest first", parents=common)
    ls.add_argument("--service")
    ls.add_argument("--environment")
    ls.add_argument("--phase", action="append", choices=[p.value for p in WindowPhase])
    ls.add_argument("--limit", type=int)
    ls.set_defaults(run=cmd_list)

    for name in ACTIONS:
        act = dsub.add_parser(name, help=f"{name} a window", parents=common)
        act.add_argument("id")
        act.add_argument("--reason")
        act.add_argument("--actor")
        act.set_defaults(run=cmd_action, action=name)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


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


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the Settings (flags over environment) and run the service until stopped."""
    from watchdog.settings import Settings

    overrides: dict[str, Any] = {}
    if args.rules:
        overrides["rules"] = args.rules
    if args.listen:
        overrides["listen_host"], overrides["listen_port"] = args.listen
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(settings_problems(exc), file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as exc:
        print(f"watchdog: cannot read the settings file: {exc}", file=sys.stderr)
        return 2
    except WatchdogError as exc:
        print(f"watchdog: {exc}", file=sys.stderr)
        return 2
    return _run(settings)


def _run(settings: Any) -> int:
    """Run the service; startup failures become one clear message and exit 2."""
    from watchdog.app import run_server
    from watchdog.logs import Redactor

    # Problems may quote a setting (a store URL with its password): never a secret.
    scrub = Redactor(settings.secrets()).scrub
    try:
        run_server(settings)
    except ConfigError as exc:
        print("watchdog: cannot start, fix these first:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {scrub(problem)}", file=sys.stderr)
        return 2
    except (WatchdogError, OSError) as exc:
        # Store unreachable, port taken: say what, never a traceback.
        print(f"watchdog: cannot start: {scrub(str(exc))}", file=sys.stderr)
        return 2
    return 0


def settings_problems(exc: ValidationError) -> str:
    """One line per invalid setting: the field, its variable and why (never its value)."""
    lines = ["watchdog: invalid settings:"]
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(p) for p in err["loc"])
        where = f"{field} (WATCHDOG_{field.split('.')[0].upper()})" if field else "settings"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate rule files: summaries to stdout, ``file:line: message`` to stderr."""
    from watchdog.rulefile.load import check_report

    summaries, problems = check_report(list(args.paths))
    for line in summaries:
        print(line)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


# --- deploy -------------------------------------------------------------------------


class ApiClient:
    """A thin synchronous client of the watchdog's HTTP API."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self._headers = headers

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """Send one request; return the decoded JSON or raise :class:`CliError`."""
        shown = display_url(self.url)
        try:
            with httpx.Client(headers=self._headers, timeout=self.timeout) as client:
                resp = client.request(method, self.url + path, **kw)
        except httpx.TimeoutException:
            raise CliError(f"watchdog at {shown} did not answer within {self.timeout}s") from None
        except (httpx.TransportError, httpx.InvalidURL):
            raise CliError(f"cannot reach watchdog at {shown}") from None
        return decode(resp)


def decode(resp: httpx.Response) -> Any:
    """The JSON body of a success, or a :class:`CliError` carrying the API's message."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.is_error:
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else resp.reason_phrase
        raise CliError(f"{resp.status_code}: {cli_render.clean(message)}")
    if body is None:
        raise CliError(f"unexpected response from watchdog ({resp.status_code}, not JSON)")
    return body


def display_url(url: str) -> str:
    """``url`` without any user:password part."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, TypeError):
        return url


def local_user() -> str | None:
    """The login name, as the default ``--actor`` when it is a safe value."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        return None
    return name if SAFE_VALUE.fullmatch(name) else None


def _client(args: argparse.Namespace) -> ApiClient:
    url = getattr(args, "url", None) or os.environ.get("WATCHDOG_URL") or DEFAULT_URL
    return ApiClient(url, os.environ.get("WATCHDOG_API_TOKEN") or None)


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if getattr(args, "json", None) else text)
    return 0


def _window_path(window_id: str) -> str:
    return f"{DEPLOYMENTS}/{quote(window_id, safe='')}"


def cmd_start(args: argparse.Namespace) -> int:
    """``deploy start``: open a window; print its id and URL."""
    body: dict[str, Any] = {"service": args.service, "version": args.version}
    optional = {
        "environment": args.environment,
        "previous_version": args.previous_version,
        "window": args.window,
        "plan": args.plan,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.label:
        body["labels"] = dict(args.label)
    data = _client(args).call("POST", DEPLOYMENTS, json=body)
    return _emit(args, data, cli_render.render_started(data))


def cmd_status(args: argparse.Namespace) -> int:
    """``deploy status ID [--watch]``: the window, its rule table and its journal."""
    client, path = _client(args), _window_path(args.id)
    if args.watch:
        fetch = partial(client.call, "GET", path)
        return watch_status(fetch, interval=args.interval, out=sys.stdout, as_json=args.json)
    data = client.call("GET", path)
    return _emit(args, data, cli_render.render_detail(data))


def cmd_list(args: argparse.Namespace) -> int:
    """``deploy list``: a table of windows."""
    params: list[tuple[str, str | int]] = [
        (k, v)
        for k, v in (("service", args.service), ("environment", args.environment))
        if v is not None
    ]
    params += [("phase", p) for p in args.phase or []]
    if args.limit is not None:
        params.append(("limit", args.limit))
    data = _client(args).call("GET", DEPLOYMENTS, params=params)
    return _emit(args, data, cli_render.render_list(data.get("windows", [])))


def cmd_action(args: argparse.Namespace) -> int:
    """``deploy hold|resume|rollback|abort ID``."""
    actor = args.actor or local_user()
    body = {k: v for k, v in (("reason", args.reason), ("actor", actor)) if v is not None}
    path = f"{_window_path(args.id)}/{args.action}"
    data = _client(args).call("POST", path, json=body)
    return _emit(args, data, cli_render.render_action(args.action, data))
