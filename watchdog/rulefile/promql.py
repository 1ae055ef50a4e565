"""The vector selectors of a PromQL expression, for checks against a live Prometheus.

Prometheus 2.42 (Debian 12's) has no ``/api/v1/parse_query``, so this is a small
tokenizer of PromQL's lexical grammar: strings (three quote kinds, escapes), comments,
numbers and durations, identifiers, ``{…}`` matchers and ``[…]`` ranges. A selector is
an identifier that is not a function call, a keyword or a label list of ``by``,
``without``, ``on``, ``ignoring``, ``group_left`` or ``group_right``, with its matchers;
or bare matchers. ``watchdog check --prometheus`` first has Prometheus parse the query
(``/api/v1/format_query``, 2.38 and later) and tokenizes its canonical print, so a
syntax error is reported by Prometheus itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY = 64 * 1024  # longer queries are refused, not tokenized
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[a-zA-Z]*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],@:])
    """,
    re.VERBOSE,
)
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
_KEYWORDS = (
    _LABEL_LISTS
    | _AGGREGATIONS
    | frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"})
)


@dataclass(frozen=True)
class Matcher:
    """``name op "value"``."""

    name: str
    op: str
    value: str

    def render(self) -> str:
        """PromQL text of the matcher (the value re-quoted)."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    """A vector selector: an optional metric name and its label matchers."""

    metric: str | None
    matchers: tuple[Matcher, ...] = ()

    def render(self, keep: tuple[Matcher, ...] | None = None) -> str:
        """PromQL text, with only the matchers in ``keep`` when given."""
        chosen = self.matchers if keep is None else keep
        inner = ",".join(m.render() for m in chosen)
        if self.metric is None:
            return "{" + inner + "}"
        return self.metric + ("{" + inner + "}" if inner else "")


class PromQLError(ValueError):
    """The expression could not be tokenized."""


def tokens(query: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs, spaces and comments dropped."""
    if len(query) > MAX_QUERY:
        raise PromQLError(f"query longer than {MAX_QUERY} characters")
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise PromQLError(f"unexpected character {query[pos]!r} at offset {pos}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        pos = match.end()
    return out


def selectors(query: str) -> list[Selector]:
    """Every vector selector in ``query``, in order of appearance."""
    toks = tokens(query)
    found: list[Selector] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "op" and text == "[":
            i = _skip(toks, i, "[", "]")  # ranges, subqueries: durations only
        elif kind == "ident" and text in _LABEL_LISTS:
            i = _skip(toks, i + 1, "(", ")") if nxt == "(" else i + 1
        elif kind == "ident" and (text in _KEYWORDS or nxt == "("):
            i += 1  # a keyword, a function or an aggregation
        elif kind == "ident":
            matchers, i = _matchers(toks, i + 1) if nxt == "{" else ((), i + 1)
            found.append(Selector(text, matchers))
        elif kind == "op" and text == "{":
            matchers, i = _matchers(toks, i)
            found.append(Selector(_name_of(matchers), matchers))
        else:
            i += 1
    return found


def _name_of(matchers: tuple[Matcher, ...]) -> str | None:
    for m in matchers:
        if m.name == "__name__" and m.op == "=":
            return m.value
    return None


def _skip(toks: list[tuple[str, str]], i: int, opening: str, closing: str) -> int:
    """Index after the bracket that closes the one at ``i``."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j] == ("op", opening):
            depth += 1
        elif toks[j] == ("op", closing):
            depth -= 1
            if depth == 0:
                return j + 1
    raise PromQLError(f"unclosed {opening!r}")


def _matchers(toks: list[tuple[str, str]], i: int) -> tuple[tuple[Matcher, ...], int]:
    """Parse ``{name op "value", ...}`` starting at the ``{`` at ``i``."""
    out: list[Matcher] = []
    i += 1
    while i < len(toks) and toks[i] != ("op", "}"):
        if toks[i] == ("op", ","):
            i += 1
            continue
        if i + 2 >= len(toks) or toks[i + 2][0] != "string":
            raise PromQLError('a label matcher must be NAME OP "value"')
        name, op, value = toks[i][1], toks[i + 1][1], toks[i + 2][1]
        out.append(Matcher(name, op, unquote(value)))
        i += 3
    if i >= len(toks):
        raise PromQLError("unclosed '{'")
    return tuple(out), i + 1


def unquote(text: str) -> str:
    """The value of a PromQL string literal (Go escapes; raw strings verbatim)."""
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


def top_call(query: str, name: str) -> bool:
    """True when the whole expression is one call of function ``name``."""
    toks = tokens(query)
    if len(toks) < 3 or toks[0] != ("ident", name) or toks[1] != ("op", "("):
        return False
    return _skip(toks, 1, "(", ")") == len(toks)
