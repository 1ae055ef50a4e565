"""LogSource across rotation on real files: rename, copy-truncate, glob paths (the newest
file, and the one rotated away mid-read), and an unreadable file told blind once.
PostgreSQL's own rotation: tests/integration/test_postgres_log_rotation.py."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.shipped import shipped
from watchdog.foundation.model import EventKind, Sample, SampleKind
from watchdog.rulefile.schema import LogRule
from watchdog.sources.base import SampleContext
from watchdog.sources.blindness import Blindness
from watchdog.sources.log import LogSource

RLS = 'ERROR:  new row violates row-level security policy for table "documents"\n'
OTHER = "LOG:  checkpoint starting: time\n"


def rule(path: Path | str, **kw: object) -> LogRule:
    spec = shipped("data-integrity.yml", "rls-violations-logged", path=str(path))
    return LogRule.model_validate({**spec, **kw})


async def count(src: LogSource, r: LogRule) -> Sample:
    return await src.sample(r, SampleContext(window_id="w1", variables={}, at=time.time()))


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def value(sample: Sample) -> float:
    assert sample.kind is SampleKind.VALUES, sample.error
    return sample.series[0].value


def touch_later(path: Path, seconds: float) -> None:
    """Move ``path``'s modification time: which file is newest must not hang on the
    file system's timestamp granularity."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


async def test_rename_rotation_counts_the_old_files_last_lines_then_the_new_one(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    log.write_text(OTHER)
    src, r = LogSource(), rule(log)
    assert value(await count(src, r)) == 0
    append(log, RLS)  # written after the last read, before the rotation
    os.rename(log, tmp_path / "app.log.1")
    log.write_text(RLS + OTHER + RLS)
    rotated = await count(src, r)
    assert value(rotated) == 3
    assert "read the rest of" in (rotated.detail or "") and "app.log.1" in (rotated.detail or "")
    append(log, RLS)
    assert value(await count(src, r)) == 4


async def test_copy_truncate_counts_the_copys_last_lines_then_the_new_content(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    log.write_text(OTHER * 3)
    src, r = LogSource(), rule(log)
    await count(src, r)
    append(log, OTHER + RLS)
    assert value(await count(src, r)) == 1
    append(log, RLS + RLS)  # after the last read: only the copy keeps them
    shutil.copyfile(log, tmp_path / "app.log.1")
    log.write_text("")  # logrotate's copytruncate
    append(log, RLS)
    truncated = await count(src, r)
    assert value(truncated) == 4 and "copy" in (truncated.detail or "")
    append(log, RLS)
    assert value(await count(src, r)) == 5


async def test_a_glob_reads_the_newest_file_and_finishes_the_one_rotated_away(
    tmp_path: Path,
) -> None:
    first = tmp_path / "postgresql-2026-12-06_100000.csv"
    first.write_text(OTHER)
    (tmp_path / "postgresql-2026-12-05_100000.csv").write_text(RLS * 9)  # older: never read
    touch_later(first, 60)
    src, r = LogSource(), rule(tmp_path / "postgresql-*.csv")
    assert value(await count(src, r)) == 0
    append(first, RLS)
    assert value(await count(src, r)) == 1
    append(first, RLS)  # the old file's last lines, then the rotation
    second = tmp_path / "postgresql-2026-12-06_110000.csv"
    second.write_text(RLS)
    touch_later(second, 120)
    rotated = await count(src, r)
    assert value(rotated) == 3 and first.name in (rotated.detail or "")
    append(second, OTHER + RLS)
    touch_later(second, 180)
    assert value(await count(src, r)) == 4


async def test_reading_stays_bounded_across_a_rotation(tmp_path: Path) -> None:
    first = tmp_path / "app-1.log"
    first.write_text("")
    src, r = LogSource(), rule(tmp_path / "app-*.log", max_bytes=1024)
    await count(src, r)
    append(first, RLS * 60)  # about 4 KiB left in the old file
    second = tmp_path / "app-2.log"
    second.write_text(RLS * 5)
    touch_later(second, 60)
    counts = [value(await count(src, r)) for _ in range(8)]
    assert counts[0] < 60 and counts == sorted(counts) and counts[-1] == 65


async def test_a_glob_that_matches_nothing_fails_then_counts_the_first_file_whole(
    tmp_path: Path,
) -> None:
    src, r = LogSource(), rule(tmp_path / "postgresql-*.json")
    missing = await count(src, r)
    assert missing.kind is SampleKind.ERROR and "no file matches" in (missing.error or "")
    (tmp_path / "postgresql-1.json").write_text(RLS + RLS)
    assert value(await count(src, r)) == 2


async def test_an_unreadable_path_is_blind_and_said_once(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-file.log"
    folder.mkdir()
    src, r, blind = LogSource(), rule(folder), Blindness(blind_after=3)
    changes = []
    for failures in range(1, 11):
        sample = await count(src, r)
        assert sample.kind is SampleKind.ERROR and sample.transient
        changes += blind.observe("w1", r, sample, failures)
    assert [c.kind for c in changes] == [EventKind.WATCHDOG_BLIND]
    assert f"log file {folder}" in changes[0].message and "directory" in changes[0].message
    folder.rmdir()
    folder.write_text(RLS)
    sample = await count(src, r)
    assert value(sample) == 1
    assert [c.kind for c in blind.observe("w1", r, sample, 0)] == [EventKind.WATCHDOG_SIGHTED]
