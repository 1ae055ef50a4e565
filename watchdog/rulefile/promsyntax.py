"""Every PromQL expression a rule sends is parsed offline before it ever runs.

The parser is ``promql-parser`` (the Rust port of Prometheus' own grammar, on PyPI).
Where ``promtool`` is installed (Debian's ``prometheus`` package), an expression
``promql-parser`` rejects is also shown to it: Prometheus' own parser then has the last
word (an expression it accepts is not refused for a grammar difference between the two)
and gives the line and column of the mistake. Without ``promtool`` the column is the
expression's first.

Templated values (``{{ service }}``) are replaced by stand-ins of the same length, so a
column in the rendered text is the column in the rule file.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.rulefile.template import PLACEHOLDER

MAX_DEPTH = 200  # brackets deeper than this are refused before parsing (its cost grows fast)
PROMTOOL_TIMEOUT = 20.0  # seconds for one `promtool check rules` of every rejected expression
_PROMTOOL_LINE = re.compile(
    r'"wd(\d+)": could not parse expression: (?:(\d+):(\d+): )?(?:parse error: )?(.*)$'
)


@dataclass(frozen=True)
class SyntaxProblem:
    """Why an expression does not parse, and where (1-based, within the expression)."""

    line: int
    column: int
    message: str


def stand_ins(expr: str) -> str:
    """``{{ name }}`` replaced by ``w`` of the same length (a label name or a value); the
    trailing newline of a block scalar dropped, so an unclosed bracket is placed at the
    end of the last line rather than on the one after it."""
    return PLACEHOLDER.sub(lambda m: _stand_in(expr, m), expr).rstrip()


def _stand_in(expr: str, match: re.Match[str]) -> str:
    """``www…`` for a label name or value; ``0…01s`` where a duration goes
    (``[{{ labels.window }}]``, ``offset {{ labels.lag }}``), as long as the placeholder."""
    before = expr[: match.start()].rstrip()
    size = len(match.group(0))
    if before.endswith(("[", ":")) or before.endswith("offset"):
        return "0" * (size - 2) + "1s"
    return "w" * size


def check_expressions(exprs: Sequence[str]) -> list[SyntaxProblem | None]:
    """For each expression, None when it parses, else the problem."""
    found = [_parse(stand_ins(e)) for e in exprs]
    rejected = [i for i, p in enumerate(found) if p is not None and p.column == 0]
    if rejected and (promtool := shutil.which("promtool")) is not None:
        verdicts = _promtool(promtool, [stand_ins(exprs[i]) for i in rejected])
        if verdicts is not None:
            for i, verdict in zip(rejected, verdicts, strict=True):
                found[i] = verdict
    return [SyntaxProblem(1, 1, p.message) if p is not None and p.column == 0 else p for p in found]


def _parse(expr: str) -> SyntaxProblem | None:
    """``promql-parser``'s verdict (column 0: position unknown yet)."""
    import promql_parser

    depth = _depth(expr)
    if depth > MAX_DEPTH:
        return SyntaxProblem(1, 1, f"brackets nested {depth} deep (at most {MAX_DEPTH})")
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        return SyntaxProblem(1, 0, str(exc))
    except BaseException as exc:  # a Rust panic is the parser's bug, not the rule's
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return None
    return None


def _depth(expr: str) -> int:
    """The deepest bracket nesting outside string literals."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    return deepest


def _promtool(promtool: str, exprs: list[str]) -> list[SyntaxProblem | None] | None:
    """Prometheus' own verdict on each expression; None when promtool cannot say."""
    rules = [{"record": f"wd{i}", "expr": e} for i, e in enumerate(exprs)]
    with tempfile.TemporaryDirectory(prefix="watchdog-promql-") as tmp:
        path = Path(tmp) / "rules.json"  # JSON is YAML: no quoting to get wrong
        path.write_text(json.dumps({"groups": [{"name": "watchdog", "rules": rules}]}))
        try:
            done = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=PROMTOOL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    out: list[SyntaxProblem | None] = [None] * len(exprs)
    for line in (done.stdout + done.stderr).splitlines():
        match = _PROMTOOL_LINE.search(line)
        if match is not None and int(match[1]) < len(exprs):
            where = (int(match[2]), int(match[3])) if match[2] else (1, 1)
            out[int(match[1])] = SyntaxProblem(*where, match[4].strip())
    if done.returncode != 0 and not any(out):
        return None  # it failed for another reason: keep promql-parser's word
    return out


# --- where in the rule file ----------------------------------------------------------

Spot = tuple[int, int, str | None]  # a YAML scalar's line, column (1-based) and style
Field = tuple[str, ...]  # the field's path inside its rule; () for a generated query


def expressions(rule: object) -> list[tuple[Field, str]]:
    """The PromQL a rule sends: ``(field, text)``; a judge's generated query last."""
    from watchdog.rulefile.judge import JudgeRule
    from watchdog.rulefile.schema import PrometheusRule

    if isinstance(rule, JudgeRule):
        fields = [((name,), getattr(rule, name, None)) for name in ("errors", "good", "total")]
        own = [(f, text) for f, text in fields if isinstance(text, str)]
        generated = [rule.query] + ([rule.baseline.query] if rule.baseline else [])
        return own + [((), text) for text in generated if text]
    if isinstance(rule, PrometheusRule):
        out: list[tuple[Field, str]] = [(("query",), rule.query)]
        if rule.baseline is not None and rule.baseline.query is not None:
            out.append((("baseline", "query"), rule.baseline.query))
        return out
    return []


def place(spot: Spot, lines: Sequence[str], problem: SyntaxProblem) -> tuple[int, int]:
    """The file line and column of ``problem`` in the scalar at ``spot``."""
    line, column, style = spot
    if style in ("|", ">"):  # content starts the line after the indicator
        return line + problem.line, _indent(lines, line) + problem.column
    if problem.line == 1:
        quoted = 1 if style in ('"', "'") else 0
        return line, column + quoted + problem.column - 1
    return line + problem.line - 1, problem.column  # a folded plain scalar: approximate


def _indent(lines: Sequence[str], indicator: int) -> int:
    """The indentation of a block scalar whose indicator is on line ``indicator``."""
    for text in lines[indicator:]:
        if text.strip():
            return len(text) - len(text.lstrip(" "))
    return 0
