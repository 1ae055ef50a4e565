"""Which file a ``log`` rule's path names now, and where an older one went.

A path is either one file (``/var/log/postgresql/postgresql-15-main.log``) or a glob
(``/var/lib/postgresql/15/main/log/postgresql-*.csv``): the file read is then the
newest match (by modification time, then name), which is how PostgreSQL's
``logging_collector``, ``log_rotation_age`` and ``pg_rotate_logfile()`` name theirs.

When the file read last is no longer the one the path names, its identity (device and
inode) is looked up among the other candidates: the glob's other matches, or for a
single file its rotated siblings (``app.log.1``, ``app.log-20261206``; compressed ones
are skipped). Found, the rest of it is read before the new file: lines written between
the last read and the rotation still count.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from errno import ENOENT

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
