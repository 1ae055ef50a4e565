"""LogSource on real files: start point, appends, partial lines, rotation, truncation."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.shipped import shipped
from watchdog.foundation.model import Sample, SampleKind
from watchdog.rulefile.load import check_report
from watchdog.rulefile.schema import LogRule
from watchdog.sources.base import SampleContext
from watchdog.sources.log import LogSource

RLS = (
    "2026-11-26 14:00:00.000 UTC [4242] ERROR:  new row violates row-level security policy "
    'for table "documents"\n'
)
OTHER = "2026-11-26 14:00:00.000 UTC [4242] LOG:  checkpoint starting: time\n"


def ctx(window: str = "w1") -> SampleContext:
    return SampleContext(window_id=window, variables={}, at=time.time())


def rls_rule(path: Path, **kw: object) -> LogRule:
    return LogRule.model_validate(
        {**shipped("data-integrity.yml", "rls-violations-logged", path=str(path)), **kw}
    )


async def value(src: LogSource, rule: LogRule, window: str = "w1") -> Sample:
    return await src.sample(rule, ctx(window))


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


async def test_counts_only_lines_appended_since_window_start(tmp_path: Path) -> None:
    log = tmp_path / "pg.log"
    log.write_text(RLS * 5 + OTHER)  # before the deploy: not counted
    src, rule = LogSource(), rls_rule(log)
    assert (await value(src, rule)).series[0].value == 0
    append(log, OTHER + RLS + OTHER + RLS)
    assert (await value(src, rule)).series[0].value == 2
    append(log, RLS[:30])  # half a line: counted once it is complete
    assert (await value(src, rule)).series[0].value == 2
    append(log, RLS[30:])
    assert (await value(src, rule)).series[0].value == 3
    assert (await value(src, rule, "w2")).series[0].value == 0  # its own start point


async def test_a_replaced_or_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    # What rotation does when the old file is gone, or truncated with no copy kept
    # (rotation that keeps them: tests/unit/test_log_rotation.py).
    log = tmp_path / "pg.log"
    log.write_text(OTHER * 10)
    src, rule = LogSource(), rls_rule(log)
    await value(src, rule)
    append(log, RLS)
    assert (await value(src, rule)).series[0].value == 1
    (tmp_path / "archive").mkdir()
    os.rename(log, tmp_path / "archive" / "pg.log")  # rotated where it is not looked for
    log.write_text(RLS + RLS)
    rotated = await value(src, rule)
    assert rotated.series[0].value == 3 and "file replaced" in (rotated.detail or "")
    log.write_text(RLS)  # truncated in place (copytruncate)
    truncated = await value(src, rule)
    assert truncated.series[0].value == 4 and "truncated" in (truncated.detail or "")


async def test_reads_are_bounded_per_evaluation(tmp_path: Path) -> None:
    log = tmp_path / "pg.log"
    log.write_text("")
    src, rule = LogSource(), rls_rule(log, max_bytes=1024)
    await value(src, rule)
    append(log, RLS * 40)  # about 4 KiB
    counts = [(await value(src, rule)).series[0].value for _ in range(6)]
    assert counts[0] < 40 and counts == sorted(counts) and counts[-1] == 40


async def test_missing_file_is_an_error_then_counted_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    src, rule = LogSource(), rls_rule(log)
    missing = await value(src, rule)
    assert missing.kind is SampleKind.ERROR and "cannot read" in (missing.error or "")
    log.write_text(RLS)
    assert (await value(src, rule)).series[0].value == 1


async def test_fk_rule_matches_sqlstate_and_message(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    fk = LogRule.model_validate(
        shipped("data-integrity.yml", "fk-violations-logged", path=str(log))
    )
    src = LogSource()
    await value(src, fk)
    append(
        log,
        'ERROR:  insert or update on table "order_items" violates foreign key '
        'constraint "order_items_order_id_fkey"\n',
    )
    append(log, 'level=error msg="insert failed" sqlstate=23503\n')
    append(log, 'level=error msg="insert failed" sqlstate=23505\n')
    assert (await value(src, fk)).series[0].value == 2


async def test_a_pathological_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    # With Python's re, ^(a+)+$ against one 28-byte line took 3.3 s, doubling per
    # character: one of these 60-byte lines would take ~2^59 steps, so a backtracking
    # engine never finishes this sample (the suite's timeout fails it). Finishing at all
    # is the proof of linear time; no wall-clock bound, which a busy machine would break.
    log = tmp_path / "app.log"
    log.write_text("")
    src = LogSource()
    rule = LogRule.model_validate(
        {
            "name": "evil",
            "source": "log",
            "path": str(log),
            "pattern": "^(a+)+$",
            "max_bytes": 8 << 20,
        }
    )
    await value(src, rule)
    append(log, ("a" * 59 + "!\n") * 100_000 + "a" * 60 + "\n")
    sample = await value(src, rule)
    assert sample.series[0].value == 1  # only the last line is all a's


def test_patterns_outside_re2_are_refused_by_check_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "logs.yml"
    path.write_text(
        "groups:\n  - name: logs\n    rules:\n"
        "      - name: backref\n        source: log\n        path: /var/log/app.log\n"
        "        pattern: '(a)\\1'\n"
        "      - name: lookahead\n        source: log\n        path: /var/log/app.log\n"
        "        pattern: 'error(?!: retrying)'\n"
        "      - name: plain\n        source: log\n        path: /var/log/app.log\n"
        "        pattern: 'ERROR: .*row-level security'\n"
    )
    summaries, problems = check_report([path])
    assert summaries == []
    assert problems == [
        f"{path}:7: pattern: not a regular expression RE2 accepts (invalid escape sequence: "
        "\\1); lookaround and backreferences are not supported",
        f"{path}:11: pattern: not a regular expression RE2 accepts (invalid perl operator: "
        "(?!); lookaround and backreferences are not supported",
    ]


async def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """Issue 25 low: a log rule on a FIFO blocked its reading thread (serve then ignored
    SIGTERM). It is refused at once, as a failed sample naming the file."""
    fifo = tmp_path / "pg.log"
    os.mkfifo(fifo)
    sample = await value(LogSource(), rls_rule(fifo))
    assert sample.kind is SampleKind.ERROR
    assert sample.error == f"cannot read {fifo}: not a regular file"
