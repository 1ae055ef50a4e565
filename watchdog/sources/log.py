"""The ``log`` source: counts lines matching a regex appended to a file since window start.

The first sample of a (window, rule) records the file's end as the start point; each
later sample reads what was appended since the last one (at most ``max_bytes`` per
evaluation, the rest next time) and the value is the number of matching lines since the
start point. Rotation (the path now names another file) and truncation (the file got
shorter) restart reading at the beginning of the new content; what the old file got
after the last read is not seen. After a restart of the watchdog the start point is
recorded again (see :mod:`watchdog.sources.counters`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, replace

from watchdog import regex
from watchdog.model import Sample
from watchdog.rulefile.schema import LogRule
from watchdog.safeyaml import open_regular
from watchdog.sources.base import SampleContext
from watchdog.sources.counters import StartPoints


@dataclass(frozen=True)
class Cursor:
    """Where reading stands in one (window, rule)'s file."""

    inode: int | None  # None: the file did not exist when last looked at
    offset: int
    count: int = 0
    partial: bytes = b""  # an unfinished last line, completed by the next read


class LogSource:
    """Counts matching lines in :class:`LogRule` files."""

    def __init__(self) -> None:
        self._cursors: StartPoints[Cursor] = StartPoints()

    async def sample(self, rule: LogRule, ctx: SampleContext) -> Sample:
        """Read what was appended since the last sample; value: matches since window start."""
        if not ctx.live:
            return Sample.failed("log files cannot be read back in time", transient=False)
        # Keyed by where the evidence starts too: after a rollback, counting starts over.
        key = (ctx.window_id, rule.name, ctx.since)
        cursor = self._cursors.get(key)
        try:
            moved, note = await asyncio.to_thread(advance, rule, cursor)
        except OSError as exc:
            if cursor is None:  # count everything once the file appears
                self._cursors.put(key, Cursor(None, 0))
            return Sample.failed(f"cannot read {rule.path}: {exc.strerror or exc}")
        self._cursors.put(key, moved)
        cursor = moved
        detail = f"{cursor.count} matching lines since window start" + (
            f" ({note})" if note else ""
        )
        return Sample.of(float(cursor.count), detail=detail)

    async def close(self) -> None:
        """Nothing to release: files are opened per read."""


def advance(rule: LogRule, cursor: Cursor | None) -> tuple[Cursor, str | None]:
    """The cursor after reading what was appended to ``rule.path`` (blocking)."""
    with open_regular(rule.path) as f:  # a FIFO would block the reading thread for ever
        st = os.fstat(f.fileno())
        if cursor is None:  # first look: the start point is the current end
            return Cursor(st.st_ino, st.st_size), None
        note = None
        if cursor.inode != st.st_ino:
            note = "file replaced: reading the new one from its start" if cursor.inode else None
            cursor = replace(cursor, inode=st.st_ino, offset=0, partial=b"")
        elif st.st_size < cursor.offset:
            note = "file truncated: reading from its start"
            cursor = replace(cursor, offset=0, partial=b"")
        f.seek(cursor.offset)
        data = f.read(min(st.st_size - cursor.offset, rule.max_bytes))
    return _consume(rule, cursor, data), note


def _consume(rule: LogRule, cursor: Cursor, data: bytes) -> Cursor:
    text = cursor.partial + data
    end = text.rfind(b"\n")
    lines, rest = (text[: end + 1], text[end + 1 :]) if end >= 0 else (b"", text)
    if len(rest) > rule.max_bytes:
        rest = b""  # a line longer than one read is skipped rather than held forever
    pattern = regex.compiled(rule.pattern)  # RE2: linear in the line's length
    found = sum(1 for line in lines.splitlines() if pattern.search(line))
    return replace(
        cursor, offset=cursor.offset + len(data), count=cursor.count + found, partial=rest
    )
