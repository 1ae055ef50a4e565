"""The ``log`` source: counts lines matching a regex appended to a file since window start.

The first sample of a (window, rule) records the file's end as the start point; each
later sample reads what was appended since the last one (at most ``max_bytes`` per
evaluation, the rest next time) and the value is the number of matching lines since the
start point. After a restart of the watchdog the start point is recorded again (see
:mod:`watchdog.sources.counters`).

The rule never goes deaf when its file rotates (``current`` and ``find`` below say
where its file is):

* **rename** (logrotate's default, PostgreSQL's ``pg_rotate_logfile()`` with a glob
  path): the rest of the old file, found again by its inode, is read first, then the new
  file from its start;
* **copy-truncate** (the file got shorter): the rest of the copy, recognised by the last
  bytes read being where reading stopped, then the truncated file from its start.

Two rotations between samples skip the file in between (its lines are not counted). A
file that cannot be read is a failed sample: the source goes blind, said once per outage
(:mod:`watchdog.sources.blindness`), and the file is counted from its start once it appears.
"""

from __future__ import annotations

import asyncio
import errno
import glob
import os
import stat
from dataclasses import dataclass, replace
from errno import ENOENT

from watchdog.foundation import regex
from watchdog.foundation.model import Sample
from watchdog.foundation.safeyaml import open_regular
from watchdog.rulefile.schema import LogRule
from watchdog.sources.base import Parts, SampleContext, SourceKind, always
from watchdog.sources.counters import StartPoints

# Which file a path names now, and where an older one went. A path is one file or a glob
# whose newest match (modification time, then name) is read: how PostgreSQL's
# logging_collector, log_rotation_age and pg_rotate_logfile() name theirs. A file read
# before is found again by identity (device, inode) among the glob's other matches, or
# for a single file among its rotated siblings (app.log.1, app.log-20261206; compressed
# ones skipped).

Identity = tuple[int, int]  # (st_dev, st_ino)
_COMPRESSED = (".gz", ".xz", ".bz2", ".zst", ".lz4", ".zip")


@dataclass(frozen=True)
class LogFile:
    """One candidate file: where it is, what it is, how big it is."""

    path: str
    identity: Identity
    size: int
    mtime_ns: int


def is_glob(path: str) -> bool:
    """Whether ``path`` holds glob characters (``*``, ``?``, ``[``)."""
    return glob.has_magic(path)


def _look(path: str) -> LogFile | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None  # rotated away between the listing and the look
    if not stat.S_ISREG(st.st_mode):
        return None
    return LogFile(path, (st.st_dev, st.st_ino), st.st_size, st.st_mtime_ns)


def _matches(pattern: str) -> list[LogFile]:
    found = (_look(p) for p in glob.glob(pattern))
    return sorted((f for f in found if f is not None), key=lambda f: (f.mtime_ns, f.path))


def current(path: str) -> LogFile:
    """The file ``path`` names now (a glob's newest match); raises OSError when none."""
    if not is_glob(path):
        st = os.stat(path)  # raises what the path's problem is (missing, permission)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the reading thread for ever
            raise OSError(errno.EINVAL, "not a regular file", path)
        return LogFile(path, (st.st_dev, st.st_ino), st.st_size, st.st_mtime_ns)
    matches = _matches(path)
    if not matches:
        raise FileNotFoundError(ENOENT, "no file matches", path)
    return matches[-1]


def others(path: str) -> list[LogFile]:
    """Where a file read before may be now: the glob's matches, or rotated siblings."""
    if is_glob(path):
        return _matches(path)
    folder, name = os.path.split(path)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return []
    siblings = [
        os.path.join(folder, e)
        for e in entries
        if e != name and e.startswith(name) and not e.endswith(_COMPRESSED)
    ]
    return sorted((f for f in map(_look, siblings) if f is not None), key=lambda f: f.mtime_ns)


def find(path: str, identity: Identity) -> LogFile | None:
    """The candidate that is the file ``identity`` names, if it is still around."""
    return next((f for f in others(path) if f.identity == identity), None)


TAIL = 64  # bytes kept of what was read last: they find a copy-truncated file's copy


@dataclass(frozen=True)
class Cursor:
    """Where reading stands in one (window, rule)'s file."""

    identity: Identity | None  # None: no file existed when last looked at
    offset: int
    count: int = 0
    partial: bytes = b""  # an unfinished last line, completed by the next read
    tail: bytes = b""  # the last bytes read (up to TAIL)


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
        detail = f"{moved.count} matching lines since window start" + (f" ({note})" if note else "")
        return Sample.of(float(moved.count), detail=detail)

    async def close(self) -> None:
        """Nothing to release: files are opened per read."""


def advance(rule: LogRule, cursor: Cursor | None) -> tuple[Cursor, str | None]:
    """The cursor after reading what was appended to the rule's file (blocking)."""
    now = current(rule.path)
    if cursor is None:  # first look: the start point is the current end
        return Cursor(now.identity, now.size), None
    budget, note = rule.max_bytes, None
    if cursor.identity is not None and cursor.identity != now.identity:
        cursor, budget, note = _finish_rotated(rule, cursor, budget)
        if cursor.identity is not None:  # more of the old file to read next time
            return cursor, note
    elif cursor.identity is not None and now.size < cursor.offset:
        cursor, budget, note = _finish_copy(rule, cursor, budget)
    if cursor.identity is None:  # a new file (or the first one to appear): all of it is new
        cursor = replace(cursor, identity=now.identity, offset=0)
    return _read(rule, cursor, now, budget)[0], note


def _finish_rotated(rule: LogRule, cursor: Cursor, budget: int) -> tuple[Cursor, int, str]:
    """Read the rest of the file rotated away; once it is read to its end the cursor
    stands at the start of what comes next (identity None)."""
    assert cursor.identity is not None
    old = find(rule.path, cursor.identity)
    if old is None:
        return _restart(cursor), budget, "file replaced: reading the new one from its start"
    cursor, budget = _read(rule, cursor, old, budget)
    if cursor.offset < old.size:
        return cursor, budget, f"rotated: reading the rest of {old.path}"
    return _restart(cursor), budget, f"rotated: read the rest of {old.path}, now the new file"


def _finish_copy(rule: LogRule, cursor: Cursor, budget: int) -> tuple[Cursor, int, str]:
    """Truncated in place: read the rest of its copy when one is found, then restart."""
    copy = next((f for f in reversed(others(rule.path)) if _continues(f, cursor)), None)
    note = "file truncated: reading from its start"
    if copy is not None:
        # The copy's rest is read whole when it fits: it is final, and lines in it
        # would otherwise be lost once reading moves to the truncated file.
        cursor, budget = _read(rule, replace(cursor, identity=copy.identity), copy, budget)
        note = f"file truncated: read the rest of its copy {copy.path}, now from its start"
    return _restart(cursor), budget, note


def _continues(candidate: LogFile, cursor: Cursor) -> bool:
    """Whether ``candidate`` holds, where reading stopped, the bytes read last."""
    if not cursor.tail or candidate.size < cursor.offset:
        return False
    try:
        with open(candidate.path, "rb") as f:
            f.seek(cursor.offset - len(cursor.tail))
            return f.read(len(cursor.tail)) == cursor.tail
    except OSError:
        return False


def _restart(cursor: Cursor) -> Cursor:
    """At the start of the file the path names now, whichever it is."""
    return replace(cursor, identity=None, offset=0, partial=b"", tail=b"")


def _read(rule: LogRule, cursor: Cursor, file: LogFile, budget: int) -> tuple[Cursor, int]:
    """Read ``file`` from the cursor's offset, at most ``budget`` bytes."""
    if budget <= 0:
        return cursor, 0
    with open_regular(file.path) as f:  # a FIFO would block the reading thread for ever
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) != file.identity:
            return cursor, budget  # rotated again since it was looked at: next time
        f.seek(cursor.offset)
        data = f.read(max(0, min(st.st_size - cursor.offset, budget)))
    return _consume(rule, cursor, data), budget - len(data)


def _consume(rule: LogRule, cursor: Cursor, data: bytes) -> Cursor:
    text = cursor.partial + data
    end = text.rfind(b"\n")
    lines, rest = (text[: end + 1], text[end + 1 :]) if end >= 0 else (b"", text)
    if len(rest) > rule.max_bytes:
        rest = b""  # a line longer than one read is skipped rather than held forever
    pattern = regex.compiled(rule.pattern)  # RE2: linear in the line's length
    found = sum(1 for line in lines.splitlines() if pattern.search(line))
    return replace(
        cursor,
        offset=cursor.offset + len(data),
        count=cursor.count + found,
        partial=rest,
        tail=(cursor.tail + data)[-TAIL:],
    )


def _build(p: Parts) -> LogSource:
    return LogSource()


KIND = SourceKind(
    name="log", rule=LogRule, build=_build, unconfigured=always,
    blind=lambda rule: f"log file {rule.path}", replay=None, graph=None, title="log",
)  # fmt: skip
