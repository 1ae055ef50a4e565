"""Load and check rule files: every problem is reported as ``file:line: message``.

Loading is build-then-swap: :func:`load_rules` returns a complete, valid :class:`RuleSet`
or raises :class:`ConfigError` listing every problem, so a caller holding the old rule
set keeps it when a new file is bad.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from watchdog.foundation import safeyaml
from watchdog.foundation.errors import ConfigError
from watchdog.rulefile.files import SOURCE_KINDS, RuleFile
from watchdog.rulefile.paths import rule_files
from watchdog.rulefile.promsyntax import Spot, check_expressions, expressions, place
from watchdog.rulefile.schema import RuleBase
from watchdog.rulefile.scope import Deployed, nearest

Loc = tuple[str | int, ...]
_SCOPED_CACHE = 4096  # distinct deployments remembered by RuleSet.for_deployment
AnyRule = RuleBase


@dataclass(frozen=True)
class RuleSet:
    """Every rule from a set of files, by name, in file order."""

    rules: tuple[AnyRule, ...] = ()
    files: tuple[str, ...] = ()
    by_name: dict[str, AnyRule] = field(default_factory=dict)
    # The choice per (service, environment, labels): evaluated every tick for every window.
    _scoped: dict[Any, tuple[AnyRule, ...]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, rules: Iterable[AnyRule], files: Iterable[str] = ()) -> RuleSet:
        """Build a set (names must already be unique)."""
        rs = tuple(rules)
        return cls(rs, tuple(files), {r.name: r for r in rs})

    def __len__(self) -> int:
        return len(self.rules)

    def for_deployment(self, deployment: Deployed) -> tuple[AnyRule, ...]:
        """The rules a window of ``deployment`` evaluates (their scope fits it)."""
        if not any(r.given for r in self.rules):
            return self.rules
        key = (deployment.service, deployment.environment, tuple(deployment.labels.items()))
        found = self._scoped.get(key)
        if found is None:
            if len(self._scoped) >= _SCOPED_CACHE:
                self._scoped.clear()
            found = self._scoped[key] = tuple(r for r in self.rules if r.applies(deployment))
        return found


@dataclass
class _Parsed:
    data: Any
    lines: dict[Loc, int]
    spots: dict[Loc, Spot] = field(default_factory=dict)  # every scalar's position
    text: list[str] = field(default_factory=list)  # the file's lines


def _to_python(node: yaml.Node, loc: Loc, parsed: _Parsed, problems: list[str]) -> Any:
    """Turn a composed YAML node into plain data, recording the line of every path."""
    lines = parsed.lines
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(f"{line}: a mapping key must be a plain value")
                continue
            key = yaml.SafeLoader("").construct_object(key_node)
            if key in out:
                problems.append(f"{line}: duplicate key {key!r}")
            out[key] = _to_python(value_node, (*loc, key), parsed, problems)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, (*loc, i), parsed, problems) for i, n in enumerate(node.value)]
    mark = node.start_mark
    parsed.spots[loc] = (mark.line + 1, mark.column + 1, getattr(node, "style", None))
    return yaml.SafeLoader("").construct_object(node)


def _parse(path: Path, problems: list[str]) -> _Parsed | None:
    try:
        text = safeyaml.read_text(path)
        node = safeyaml.compose(text)
        if node is None:
            problems.append(f"{path}:1: empty file: expected 'groups:'")
            return None
        parsed = _Parsed(None, {}, text=text.splitlines())
        local: list[str] = []
        parsed.data = _to_python(node, (), parsed, local)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    except yaml.YAMLError as exc:  # syntax, limits, unknown tags
        problems.append(safeyaml.describe(path, exc))
        return None
    problems.extend(f"{path}:{p}" for p in local)
    return parsed


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 0


def _strip_tags(loc: Sequence[str | int], data: Any) -> Loc:
    """Drop the union tags pydantic inserts into error locations (``…, 'prometheus', …``)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and part in SOURCE_KINDS:
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else _index(node, part)
    return tuple(out)


def _index(node: Any, part: str | int) -> Any:
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _message(err: ErrorDetails, loc: Loc) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    field_name = ".".join(str(p) for p in loc[-2:] if isinstance(p, str)) or "file"
    if kind == "union_tag_invalid":
        return f"unknown source {ctx.get('tag')!r} (expected one of: {', '.join(SOURCE_KINDS)})"
    if kind == "union_tag_not_found":
        return f"rule has no 'source' (expected one of: {', '.join(SOURCE_KINDS)})"
    if kind == "extra_forbidden":
        return f"unknown field {loc[-1]!r}"
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    msg = err["msg"].removeprefix("Value error, ")
    name = loc[-1] if loc and isinstance(loc[-1], str) else field_name
    return f"{name}: {msg}"


def _validate(path: Path, parsed: _Parsed, problems: list[str]) -> RuleFile | None:
    try:
        return RuleFile.model_validate(parsed.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _strip_tags(err["loc"], parsed.data)
            if err["type"].startswith("union_tag"):
                loc = (*loc, "source")
            problems.append(f"{path}:{_line_for(loc, parsed.lines)}: {_message(err, loc)}")
        return None


def _flatten(path: Path, parsed: _Parsed, rule_file: RuleFile) -> list[AnyRule]:
    out: list[AnyRule] = []
    for gi, group in enumerate(rule_file.groups):
        for ri, rule in enumerate(group.rules):
            line = _line_for(("groups", gi, "rules", ri), parsed.lines)
            update: dict[str, Any] = {"group": group.name, "origin": f"{path}:{line}"}
            scope = nearest(rule, group, rule_file)  # the rule's own, else its group's, ...
            update |= {"services": scope.services, "match": scope.match}
            if rule.interval is None:
                update["interval"] = group.interval
            out.append(rule.model_copy(update=update))
    return out


def _raw_names(path: Path, parsed: _Parsed) -> list[tuple[str, str]]:
    """(name, file:line) of every rule written, valid or not."""
    out = []
    groups = parsed.data.get("groups") if isinstance(parsed.data, dict) else None
    for gi, group in enumerate(groups if isinstance(groups, list) else []):
        rules = group.get("rules") if isinstance(group, dict) else None
        for ri, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, dict) and isinstance(rule.get("name"), str):
                line = _line_for(("groups", gi, "rules", ri, "name"), parsed.lines)
                out.append((rule["name"], f"{path}:{line}"))
    return out


def _duplicates(names: list[tuple[str, str]]) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for name, origin in names:
        if name in seen:
            problems.append(f"{origin}: duplicate rule name {name!r} (first at {seen[name]})")
        else:
            seen[name] = origin
    return problems


def _load_file(
    path: Path, problems: list[str], names: list[tuple[str, str]]
) -> list[AnyRule] | None:
    before = len(problems)
    parsed = _parse(path, problems)
    if parsed is None:
        return None
    names.extend(_raw_names(path, parsed))
    rule_file = _validate(path, parsed, problems)
    if rule_file is None or len(problems) > before:
        return None
    problems.extend(_syntax(path, parsed, rule_file))
    if len(problems) > before:
        return None
    return _flatten(path, parsed, rule_file)


def _syntax(path: Path, parsed: _Parsed, rule_file: RuleFile) -> list[str]:
    """``file:line:column:`` for every PromQL expression that does not parse."""
    asked: list[tuple[Loc, str, str]] = []  # (the field's path, rule name, expression)
    for gi, group in enumerate(rule_file.groups):
        for ri, rule in enumerate(group.rules):
            where: Loc = ("groups", gi, "rules", ri)
            asked += [((*where, *f), rule.name, text) for f, text in expressions(rule)]
    verdicts = check_expressions([text for _, _, text in asked])
    problems, failed = [], set()
    for (loc, name, _), problem in zip(asked, verdicts, strict=True):
        if problem is None or (len(loc) == 4 and name in failed):
            continue  # a judge's generated query fails with its own fields: said once
        failed.add(name)
        spot = parsed.spots.get(loc)
        if spot is None:  # a generated query: the rule's line
            line, column = _line_for(loc, parsed.lines), 1
            what = "its query"
        else:
            line, column = place(spot, parsed.text, problem)
            what = ".".join(str(p) for p in loc[4:])
        problems.append(
            f"{path}:{line}:{column}: rule {name!r}: {what} is not valid PromQL: {problem.message}"
        )
    return problems


def _in_order(problems: list[str]) -> list[str]:
    """Sort ``file:line: message`` problems by file, then line (stable otherwise)."""

    def key(problem: str) -> tuple[str, int]:
        match = re.match(r"^(.*?):(\d+)(?::\d+)?: ", problem)
        return (match.group(1), int(match.group(2))) if match else (problem, 0)

    return sorted(problems, key=key)


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load every rule file under ``paths`` (files or directories of ``*.yml``/``*.yaml``).

    Raises ConfigError listing every problem; returns only a fully valid set.
    """
    files, problems = rule_files(paths)
    rules: list[AnyRule] = []
    names: list[tuple[str, str]] = []
    for path in files:
        loaded = _load_file(path, problems, names)
        rules.extend(loaded or [])
    problems.extend(_duplicates(names))
    if problems:
        raise ConfigError(_in_order(problems))
    return RuleSet.of(rules, (str(f) for f in files))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def check_report(paths: list[Path]) -> tuple[list[str], list[str]]:
    """What ``watchdog check`` prints: (one summary per valid file, every problem)."""
    files, problems = rule_files(paths)
    summaries: list[str] = []
    names: list[tuple[str, str]] = []
    for path in files:
        loaded = _load_file(path, problems, names)
        if loaded is None:
            continue
        groups = len({r.group for r in loaded})
        kinds = sorted({r.source for r in loaded})
        rules, in_groups = _plural(len(loaded), "rule"), _plural(groups, "group")
        summaries.append(f"{path}: SUCCESS: {rules} in {in_groups} ({', '.join(kinds)})")
    problems.extend(_duplicates(names))
    return summaries, _in_order(problems)
