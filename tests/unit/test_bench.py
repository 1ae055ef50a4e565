"""Each benchmark runs once at tiny size so it cannot rot (figures are not asserted)."""

from __future__ import annotations

from bench import engine_overhead, slack_ack


def test_engine_overhead_runs_at_tiny_size() -> None:
    out = engine_overhead.main(["--sizes", "1,2", "--rounds", "1"])
    assert out.count("\n") == 3  # header, separator, two rows


def test_slack_ack_runs_at_tiny_size() -> None:
    out = slack_ack.main(["--rules", "3", "--clicks", "3"])
    assert out.count("| ") >= 4 and "p99 loaded / idle" in out
