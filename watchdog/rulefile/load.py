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

from watchdog import safeyaml
from watchdog.errors import ConfigError
from watchdog.rulefile.files import SOURCE_KINDS, RuleFile
from watchdog.rulefile.schema import RuleBase

Loc = tuple[str | int, ...]
AnyRule = RuleBase


@dataclass(frozen=True)
class RuleSet:
    """Every rule from a set of files, by name, in file order."""

    rules: tuple[AnyRule, ...] = ()
    files: tuple[str, ...] = ()
    by_name: dict[str, AnyRule] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: Iterable[AnyRule], files: Iterable[str] = ()) -> RuleSet:
        """Build a set (names must already be unique)."""
        rs = tuple(rules)
        return cls(rs, tuple(files), {r.name: r for r in rs})

    def __len__(self) -> int:
        return len(self.rules)


@dataclass
class _Parsed:
    data: Any
    lines: dict[Loc, int]


def _rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            # Regular files only (is_file follows symlinks): a FIFO would block the read.
            found = sorted(
                p for p in path.iterdir() if p.suffix in {".yml", ".yaml"} and p.is_file()
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        elif path.exists():
            problems.append(f"{path}:0: cannot read: not a regular file")
        else:
            problems.append(f"{path}:0: no such file or directory")
    return files, problems


def _to_python(node: yaml.Node, loc: Loc, lines: dict[Loc, int], problems: list[str]) -> Any:
    """Turn a composed YAML node into plain data, recording the line of every path."""
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
            out[key] = _to_python(value_node, (*loc, key), lines, problems)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, (*loc, i), lines, problems) for i, n in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def _parse(path: Path, problems: list[str]) -> _Parsed | None:
    try:
        node = safeyaml.compose(safeyaml.read_text(path))
        if node is None:
            problems.append(f"{path}:1: empty file: expected 'groups:'")
            return None
        lines: dict[Loc, int] = {}
        local: list[str] = []
        data = _to_python(node, (), lines, local)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    except yaml.YAMLError as exc:  # syntax, limits, unknown tags
        problems.append(safeyaml.describe(path, exc))
        return None
    problems.extend(f"{path}:{p}" for p in local)
    return _Parsed(data, lines)


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
    return _flatten(path, parsed, rule_file)


def _in_order(problems: list[str]) -> list[str]:
    """Sort ``file:line: message`` problems by file, then line (stable otherwise)."""

    def key(problem: str) -> tuple[str, int]:
        match = re.match(r"^(.*?):(\d+): ", problem)
        return (match.group(1), int(match.group(2))) if match else (problem, 0)

    return sorted(problems, key=key)


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load every rule file under ``paths`` (files or directories of ``*.yml``/``*.yaml``).

    Raises ConfigError listing every problem; returns only a fully valid set.
    """
    files, problems = _rule_files(paths)
    rules: list[AnyRule] = []
    names: list[tuple[str, str]] = []
    for path in files:
        loaded = _load_file(path, problems, names)
        rules.extend(loaded or [])
    problems.extend(_duplicates(names))
    if problems:
        raise ConfigError(_in_order(problems))
    return RuleSet.of(rules, (str(f) for f in files))


def check_report(paths: list[Path]) -> tuple[list[str], list[str]]:
    """What ``watchdog check`` prints: (one summary per valid file, every problem)."""
    files, problems = _rule_files(paths)
    summaries: list[str] = []
    names: list[tuple[str, str]] = []
    for path in files:
        loaded = _load_file(path, problems, names)
        if loaded is None:
            continue
        groups = len({r.group for r in loaded})
        kinds = sorted({r.source for r in loaded})
        summaries.append(
            f"{path}: SUCCESS: {len(loaded)} rules in {groups} groups ({', '.join(kinds)})"
        )
    problems.extend(_duplicates(names))
    return summaries, _in_order(problems)
