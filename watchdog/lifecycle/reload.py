"""Hot reload of the rule files (``SIGHUP`` or ``POST /-/reload``): build, then swap.

Every file is parsed and validated first (``load_rules`` collects every problem with
its ``file:line``); only a complete, valid rule set replaces the one in force, in one
assignment. A bad file changes nothing: the old rules keep running, and the problems
go to the log, the API answer and ``watchdog_rules_last_reload_successful`` (0).

Open windows keep the state (``for`` progress, last values) of every rule that did
not change; a rule whose definition changed starts afresh, as does a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from watchdog.foundation.errors import ConfigError
from watchdog.lifecycle.engine import Engine, RuleBook
from watchdog.plumbing.metrics import Metrics
from watchdog.rulefile.load import AnyRule, RuleSet

log = structlog.get_logger("watchdog.reload")


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: the rule set in force afterwards, or why nothing changed."""

    ok: bool
    rules: int  # rules in force after the attempt
    errors: list[str] = field(default_factory=list)  # ``file:line: problem``
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def same_rule(a: AnyRule, b: AnyRule) -> bool:
    """Equal definitions; where the rule sits in its file (``origin``) does not count."""
    return type(a) is type(b) and a.model_dump(exclude={"origin"}) == b.model_dump(
        exclude={"origin"}
    )


def no_rules(rules: RuleSet, paths: Sequence[Path]) -> str | None:
    """Why the watchdog watches nothing, or None. Zero rules is not ready (``/readyz``
    503): a watchdog that watches nothing must not look healthy (issue 25). The process
    stays up, so a reload that brings rules makes it ready."""
    if len(rules):
        return None
    named = ", ".join(f"{p}/" if p.is_dir() else str(p) for p in paths)
    return f"no rules loaded from {named}" if named else "no rules: WATCHDOG_RULES names nothing"


class RuleReloader:
    """Reloads rules into ``book`` with ``load`` (which raises ConfigError on any problem)."""

    def __init__(
        self,
        load: Callable[[], RuleSet],
        book: RuleBook,
        engine: Engine,
        metrics: Metrics | None = None,
    ) -> None:
        self._load = load
        self._book = book
        self._engine = engine
        self._metrics = metrics
        self._lock = asyncio.Lock()  # two reloads at once would race on the swap

    async def reload(self) -> ReloadResult:
        """Re-read the rule files; swap them in only if all are valid."""
        async with self._lock:
            try:
                new = await asyncio.to_thread(self._load)
            except ConfigError as exc:
                return self._failed(exc.problems)
            except Exception as exc:  # a bug in loading must not kill SIGHUP's task silently
                log.exception("rule reload crashed")
                return self._failed([f"unexpected error loading the rules: {type(exc).__name__}"])
            return self._swap(new)

    def _failed(self, problems: list[str]) -> ReloadResult:
        if self._metrics is not None:
            self._metrics.rules_loaded(0, ok=False)
        log.error("rule reload failed: keeping the rules in force", problems=problems)
        return ReloadResult(ok=False, rules=len(self._book.current), errors=problems)

    def _swap(self, new: RuleSet) -> ReloadResult:
        old = self._book.current.by_name
        added = [n for n in new.by_name if n not in old]
        removed = [n for n in old if n not in new.by_name]
        changed = [n for n, r in new.by_name.items() if n in old and not same_rule(old[n], r)]
        if not len(new):
            log.warning("rules reloaded: there are none, nothing is watched (/readyz is 503)")
        self._book.current = new  # the swap: one assignment
        self._engine.reset_rules([*changed, *removed])
        if self._metrics is not None:
            self._metrics.rules_loaded(len(new), ok=True)
        log.info("rules reloaded", rules=len(new), added=added, changed=changed, removed=removed)
        return ReloadResult(ok=True, rules=len(new), added=added, changed=changed, removed=removed)
