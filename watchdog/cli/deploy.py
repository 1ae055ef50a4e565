"""``watchdog deploy …``: an httpx client of a running watchdog's API.

The URL comes from ``--url`` or ``WATCHDOG_URL``; the token only ever from
``WATCHDOG_API_TOKEN`` (never a flag, so it stays out of shell history and process listings).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

import watchdog.cli.render as cli_render
from watchdog.cli.common import DEFAULT_URL, CliError, duration, label
from watchdog.cli.gate import wait_for_outcome
from watchdog.cli.watch import positive, watch_status
from watchdog.foundation.model import WindowPhase
from watchdog.rulefile.template import SAFE_VALUE

ACTIONS = ("hold", "resume", "rollback", "approve", "abort")
DEPLOYMENTS = "/api/v1/deployments"


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


def add_deploy(sub: Any) -> None:
    """Add ``deploy start|status|list|hold|resume|rollback|abort``."""
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
    start.add_argument(
        "--shadow",
        action="store_true",
        help="shadow mode: rules evaluate, nothing acts; the journal says what would have",
    )
    start.add_argument(
        "--confirm-for",
        metavar="DURATION",
        help="after a rollback, watch the restored version this long, e.g. 5m (0: don't)",
    )
    start.add_argument(
        "--force",
        action="store_true",
        help="register a --previous-version the watchdog never saw running (journaled)",
    )
    _gate_options(start)
    start.set_defaults(run=cmd_start)

    wait = dsub.add_parser(
        "wait", help="block until the window ends; exit code says how (CI gate)", parents=common
    )
    wait.add_argument("id")
    _gate_options(wait, always=True)
    wait.set_defaults(run=cmd_wait)

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
        act.add_argument(
            "--actor", help="a note beside the API identity in the journal (default: login name)"
        )
        act.set_defaults(run=cmd_action, action=name)


def _gate_options(parser: argparse.ArgumentParser, *, always: bool = False) -> None:
    if not always:
        parser.add_argument(
            "--wait", action="store_true", help="block until the window ends (CI gate)"
        )
    parser.add_argument("--poll", type=positive, default=2.0, help="seconds between looks")
    parser.add_argument(
        "--timeout",
        type=duration,
        metavar="DURATION",
        help="give up after this long (exit 5 if awaiting approval, else 7)",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


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
        "confirm_for": args.confirm_for,
        "shadow": True if args.shadow else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if args.label:
        body["labels"] = dict(args.label)
    if args.force:
        body["force"] = True
    client = _client(args)
    data = client.call("POST", DEPLOYMENTS, json=body)
    _emit(args, data, cli_render.render_started(data))
    if not args.wait:
        return 0
    return _wait(client, str(data["id"]), args)


def cmd_wait(args: argparse.Namespace) -> int:
    """``deploy wait ID``: stream phase changes and events until the window ends."""
    return _wait(_client(args), args.id, args)


def _wait(client: ApiClient, window_id: str, args: argparse.Namespace) -> int:
    fetch = partial(client.call, "GET", _window_path(window_id))
    return wait_for_outcome(fetch, interval=args.poll, timeout=args.timeout, out=sys.stdout)


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
    """``deploy hold|resume|rollback|approve|abort ID``."""
    actor = args.actor or local_user()
    body = {k: v for k, v in (("reason", args.reason), ("actor", actor)) if v is not None}
    path = f"{_window_path(args.id)}/{args.action}"
    data = _client(args).call("POST", path, json=body)
    return _emit(args, data, cli_render.render_action(args.action, data))
