"""YAML with limits: document size, nesting depth and alias expansion, checked as it composes.

PyYAML's composer shares the node an alias points at, so a 300-byte file of nested
aliases (the "billion laughs") composes instantly and only explodes when something walks
it: a rule file of that kind took a reload to 5.6 GB. A recursive alias or 5,000 levels
of nesting end in ``RecursionError``. :class:`BoundedLoader` counts, while composing,
every node *as it would be after expanding aliases*, and the depth of the node being
composed; past a limit it raises :class:`YamlLimitError` at the offending mark (so the
caller can say ``file:line``) before anything is expanded. Only safe tags are known
(``SafeConstructor``); events come from libyaml when PyYAML has it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.events import AliasEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from watchdog.foundation.errors import ConfigError


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on one YAML document. Rule and settings files are far below all three."""

    max_bytes: int = 4 << 20  # the file as read, before parsing
    max_nodes: int = 100_000  # scalars + sequences + mappings, aliases expanded
    max_depth: int = 64  # nesting of sequences and mappings


DEFAULT_LIMITS = YamlLimits()


class YamlLimitError(MarkedYAMLError):
    """A document over one of :class:`YamlLimits` (or a recursive alias)."""


class _PyEvents(Reader, Scanner, Parser):
    """PyYAML's pure-Python event parser, for a PyYAML built without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


try:  # libyaml parses ~10x faster; the composer (where the limits are) stays Python.
    from yaml._yaml import CParser as _Events
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    _Events = _PyEvents  # type: ignore[assignment,misc]


class BoundedLoader(Composer, _Events, SafeConstructor, Resolver):
    """A safe loader whose (Python) composer enforces :class:`YamlLimits`."""

    def __init__(self, stream: str, limits: YamlLimits = DEFAULT_LIMITS) -> None:
        _Events.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._limits = limits
        self._depth = 0
        self._nodes = 0  # nodes composed so far, each alias counted as what it expands to
        self._weights: dict[int, int] = {}  # id(anchored node) → its expanded size

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, counting it (and, for an alias, what it expands to)."""
        event: Any = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            weight = self._weights.get(id(node))
            if weight is None:  # the anchor is still open: the alias is inside it
                raise self._error(f"recursive alias *{event.anchor} (it refers to itself)", event)
            self._count(weight, event)
            return node
        self._depth += 1
        if self._depth > self._limits.max_depth:
            raise self._error(f"nested deeper than {self._limits.max_depth} levels", event)
        before = self._nodes
        self._count(1, event)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if event.anchor is not None:
            self._weights[id(node)] = self._nodes - before
        return node

    def _count(self, weight: int, event: Any) -> None:
        self._nodes += weight
        if self._nodes > self._limits.max_nodes:
            raise self._error(
                f"more than {self._limits.max_nodes:,} nodes once aliases are expanded",
                event,
            )

    @staticmethod
    def _error(problem: str, event: Any) -> YamlLimitError:
        mark: Mark = event.start_mark
        return YamlLimitError(problem=problem, problem_mark=mark)


def compose(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> yaml.Node | None:
    """The single document in ``text`` as a node tree; raises ``yaml.YAMLError``."""
    if len(text) > limits.max_bytes:
        raise YamlLimitError(problem=f"document larger than {_size(limits.max_bytes)}")
    loader = BoundedLoader(text, limits)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" not in str(exc.problem):
            raise
        # libyaml's own depth limit (1,000), met while scanning ahead of the composer.
        deeper = f"nested deeper than {limits.max_depth} levels"
        raise YamlLimitError(problem=deeper, problem_mark=exc.problem_mark) from None
    finally:
        loader.dispose()


def open_regular(path: Path | str) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file: a FIFO or a device would
    block the reader for ever (a FIFO in the rule directory wedged every reload, and
    ``serve`` then ignored SIGTERM). Opened non-blocking, judged by the open descriptor
    (no race with a swap), then read normally. Raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_text(path: Path, limits: YamlLimits = DEFAULT_LIMITS) -> str:
    """Read at most ``max_bytes`` of ``path`` as UTF-8; raises ConfigError naming the file."""
    try:
        with open_regular(path) as f:
            data = f.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ConfigError([f"{path}:0: cannot read: {exc.strerror or exc}"]) from None
    if len(data) > limits.max_bytes:
        raise ConfigError([f"{path}:0: file larger than {_size(limits.max_bytes)}"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}:0: cannot read: {exc}"]) from None


def load_file(path: Path, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """Read and construct a YAML file within ``limits``; problems: ``file:line`` ConfigError."""
    text = read_text(path, limits)
    try:
        node = compose(text, limits)
        if node is None:
            return None
        return yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([describe(path, exc)]) from None


def describe(path: Path | str, exc: yaml.YAMLError) -> str:
    """``file:line: problem`` for a YAML error (line 0 when it has no position)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else 0
    reason = getattr(exc, "problem", None) or str(exc)
    kind = "YAML over limits" if isinstance(exc, YamlLimitError) else "YAML syntax error"
    return f"{path}:{line}: {kind}: {reason}"


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n:,} bytes"
