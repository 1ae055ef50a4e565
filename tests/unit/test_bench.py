"""Each benchmark runs once at tiny size so it cannot rot (figures are not asserted)."""

from __future__ import annotations

from bench import alertmanager_receiver, engine_overhead, slack_ack, status_costs


def test_engine_overhead_runs_at_tiny_size() -> None:
    out = engine_overhead.main(["--sizes", "1,2", "--rounds", "1"])
    assert out.count("\n") == 3  # header, separator, two rows


def test_status_costs_runs_at_tiny_size() -> None:
    out = status_costs.main(["--writes", "3", "--renders", "1", "--steps", "3"])
    assert out.count("\n") == 5  # header, separator, four rows


def test_alertmanager_receiver_runs_at_tiny_size() -> None:
    out = alertmanager_receiver.main(["--sizes", "1,20", "--requests", "2"])
    assert out.count("\n") == 3  # header, separator, two rows
    assert "| 20 |" in out


def test_slack_ack_runs_at_tiny_size() -> None:
    out = slack_ack.main(["--rules", "3", "--clicks", "3"])
    assert out.count("| ") >= 4 and "p99 loaded / idle" in out
