"""``watchdog serve``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from watchdog.foundation.errors import ConfigError, WatchdogError


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the Settings (flags over environment) and run the service until stopped."""
    from watchdog.settings import Settings

    overrides: dict[str, Any] = {}
    if args.rules:
        overrides["rules"] = args.rules
    if args.listen:
        overrides["listen_host"], overrides["listen_port"] = args.listen
    warn_unknown_variables()
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
    from watchdog.plumbing.logs import Redactor
    from watchdog.process import run_server

    # Problems may quote a setting (a store URL with its password): never a secret.
    scrub = Redactor(settings.secrets()).scrub
    try:
        refuse_what_cannot_work(settings)
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


def refuse_what_cannot_work(settings: Any) -> None:
    """Raise ConfigError before starting what could only fail later.

    The rule files must load (every PromQL expression parses, targets are configured),
    and a rule that rolls back must have a plan to run: the first firing rule would
    otherwise fail with "no rollback plan set" in the middle of an incident.
    """
    from watchdog.foundation.model import Action
    from watchdog.wiring import checked_rules

    rules = checked_rules(settings)
    if settings.default_plan is not None or settings.shadow:
        return  # default_plan is checked against plans by Settings; shadow never acts
    acting = [r for r in rules.rules if r.action in (Action.ROLLBACK, Action.APPROVE)]
    acting = [r for r in acting if not r.shadow]
    if not acting:
        return
    first = acting[0]
    named = ", ".join(sorted(settings.plans))
    fix = (
        f"set default_plan (WATCHDOG_DEFAULT_PLAN) to one of the plans: {named}"
        if named
        else "add a plan under 'plans:' in the WATCHDOG_CONFIG file and name it in "
        "'default_plan:' (see docs/deploy.md)"
    )
    more = f" (and {len(acting) - 1} more)" if len(acting) > 1 else ""
    raise ConfigError(
        [
            f"{first.origin}: rule {first.name!r}{more} has action: {first.action.value}, "
            f"but no rollback plan is set, so its first firing would fail: {fix}"
        ]
    )


def settings_problems(exc: ValidationError) -> str:
    """One line per invalid setting: where it was set, the key, and what to write instead
    (:mod:`watchdog.config.settingserrors`; never its value, never pydantic's own dump)."""
    from watchdog.config.settingserrors import problems
    from watchdog.settings import Settings

    return "\n".join(["watchdog: invalid settings:", *(f"  {p}" for p in problems(exc, Settings))])


def warn_unknown_variables() -> None:
    """``WATCHDOG_*`` variables that set nothing (a typo is otherwise silently ignored)."""
    from watchdog.config.settingserrors import unknown_variables
    from watchdog.settings import Settings

    for warning in unknown_variables(Settings):
        print(f"watchdog: warning: {warning}", file=sys.stderr)
