"""``watchdog check [--prometheus URL]``: rule files the way ``promtool check rules`` does,
and, against a live Prometheus, the rules that could never fire (``rulefile/livecheck.py``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from watchdog.cli.common import CliError

TIMEOUT = 10.0  # seconds per request to Prometheus


def add_check(sub: Any) -> None:
    """Register ``check``."""
    check = sub.add_parser("check", help="validate rule files (promtool style) and settings")
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    check.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="also validate this settings file (as WATCHDOG_CONFIG, with the environment)",
    )
    check.add_argument(
        "--prometheus",
        metavar="URL",
        help="also ask this Prometheus whether every rule can fire (its series, labels, buckets)",
    )
    check.add_argument(
        "--service-label",
        default=None,
        metavar="LABEL",
        help="the label naming the service on series (default: the setting, else 'service')",
    )
    check.add_argument(
        "--service", metavar="NAME", help="also check that series of this service exist"
    )
    check.set_defaults(run=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate rule files: summaries to stdout, ``file:line: message`` to stderr, then
    the verdict (after the problems, so it is the last thing read)."""
    from watchdog.rulefile.load import check_report

    if not args.paths and args.config is None:
        raise CliError("give rule files or directories to check, or --config FILE", 2)
    summaries, problems = check_report(list(args.paths))
    if args.config is not None:
        found = config_problems(args.config)
        summaries += [] if found else [f"{args.config}: SUCCESS: settings valid"]
        problems = found + problems
    for line in summaries:
        print(line)
    sys.stdout.flush()
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.stderr.flush()
    if problems:
        print(f"FAILED: {plural(len(problems), 'problem')}; fix them and run check again")
        return 1
    counted = [int(m[1]) for s in summaries if (m := re.search(r": SUCCESS: (\d+) rule", s))]
    checked = f"{plural(sum(counted), 'rule')} in {plural(len(counted), 'file')}"
    if args.config is not None:
        checked = f"{checked} and the settings" if args.paths else "the settings"
    if not args.prometheus:
        print(f"SUCCESS: {checked}, no problems")
        return 0
    return live_check(args)


def config_problems(path: Path) -> list[str]:
    """Every problem of the settings ``path`` holds (with the environment, as ``serve``
    reads them); warnings about ``WATCHDOG_*`` variables that set nothing on stderr."""
    import os

    import yaml
    from pydantic import ValidationError

    from watchdog.cli.serve import warn_unknown_variables
    from watchdog.config.settingserrors import problems
    from watchdog.foundation.errors import ConfigError
    from watchdog.settings import Settings

    warn_unknown_variables()
    if not path.is_file():
        return [f"{path}:0: no such file"]
    before = os.environ.get("WATCHDOG_CONFIG")
    os.environ["WATCHDOG_CONFIG"] = str(path)
    try:
        Settings()
    except ValidationError as exc:
        return problems(exc, Settings)
    except ConfigError as exc:
        return list(exc.problems)
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path}:0: cannot read the settings file: {exc}"]
    finally:
        if before is None:
            os.environ.pop("WATCHDOG_CONFIG", None)
        else:
            os.environ["WATCHDOG_CONFIG"] = before
    return []


def plural(count: int, noun: str) -> str:
    """``1 problem``, ``2 problems``, ``0 problems``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def live_check(args: argparse.Namespace) -> int:
    """Ask Prometheus about every Prometheus rule; 1 when one of them can never fire."""
    from watchdog.rulefile.livecheck import Checked, check_rules
    from watchdog.rulefile.load import load_rules

    rules = [r for r in load_rules(args.paths).rules if isinstance(r, Checked)]
    label = args.service_label or _setting_label()
    findings = check_rules(rules, LivePrometheus(args.prometheus), label, args.service)
    for finding in findings:
        print(finding, file=sys.stderr)
    sys.stderr.flush()
    errors = sum(f.error for f in findings)
    never = len({f.rule for f in findings if f.error})
    verdict = "FAILED" if errors else "SUCCESS"
    print(
        f"{verdict}: {args.prometheus}: {plural(len(rules), 'rule')} reading Prometheus "
        f"checked: {plural(never, 'rule')} can never fire, "
        f"{plural(len(findings) - errors, 'note')}"
    )
    return 1 if errors else 0


def _setting_label() -> str:
    """The ``service_label`` setting (``service`` when the settings cannot be read)."""
    from watchdog.settings import Settings

    try:
        return Settings().service_label
    except Exception:  # unrelated invalid settings must not stop a rule check
        return "service"


class LivePrometheus:
    """The live check's Prometheus: prometheus-api-client, bounded, errors → CliError."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        # One quick retry: a person is waiting, and a check is easily run again.
        retry = Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504))
        connect: Any = PrometheusConnect  # its annotations say int where floats work
        self._session = requests.Session()
        self._client = connect(url=self.url, timeout=TIMEOUT, retry=retry, session=self._session)

    def count(self, query: str) -> float | None:
        """The single number of a ``count(...)`` query, None when the result is empty."""
        result = self._call(self._client.custom_query, query, params={"timeout": "10s"})
        if not isinstance(result, list) or not result:
            return None
        return float(result[0]["value"][1])

    def label_values(self, label: str, match: str) -> list[str]:
        """Values of ``label`` on series matching ``match`` (Prometheus ≥ 2.24)."""
        values = self._call(self._client.get_label_values, label, params={"match[]": match})
        return [str(v) for v in values]

    def format_query(self, query: str) -> str:
        """``/api/v1/format_query`` (Prometheus ≥ 2.38): its parse, printed canonically."""
        from watchdog.rulefile.livecheck import QueryRejected

        url = f"{self.url}/api/v1/format_query"
        get = self._session.get
        response = self._call(get, url, params={"query": query}, timeout=TIMEOUT)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 400 and body.get("errorType") == "bad_data":
            raise QueryRejected(
                str(body.get("error", "")).removeprefix('invalid parameter "query": ')
            )
        if response.status_code != 200 or body.get("status") != "success":
            raise CliError(f"Prometheus at {self.url} answered HTTP {response.status_code}", 2)
        return str(body["data"])

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except requests.RequestException as exc:
            raise CliError(
                f"cannot ask Prometheus at {self.url}: {type(exc).__name__}", 2
            ) from None
        except PrometheusApiClientException as exc:
            raise CliError(f"Prometheus at {self.url} refused a check: {_reason(exc)}", 2) from None


def _reason(exc: PrometheusApiClientException) -> str:
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:].rstrip(")'\""))
            return str(body.get("error", text))[:300]
        except ValueError:
            pass
    return text[:300]
