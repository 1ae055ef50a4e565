"""The global missing-data choice fills in only the policies a rule leaves out."""

from __future__ import annotations

from pathlib import Path

from watchdog.rulefile.failmode import apply_missing_data
from watchdog.rulefile.load import load_rules

RULES = """\
groups:
  - name: g
    rules:
      - name: plain
        source: prometheus
        query: up
        threshold: "> 0"
      - name: lenient
        source: prometheus
        query: up
        threshold: "> 0"
        on_error: inconclusive
        no_data: ok
"""


def policies(tmp_path: Path, mode: str) -> dict[str, tuple[str, str]]:
    path = tmp_path / "r.yml"
    path.write_text(RULES)
    rules = apply_missing_data(load_rules([path]), mode)  # type: ignore[arg-type]
    return {r.name: (r.no_data.value, r.on_error.value) for r in rules.rules}


def test_fail_open_keeps_the_inconclusive_default(tmp_path: Path) -> None:
    assert policies(tmp_path, "fail_open") == {
        "plain": ("inconclusive", "inconclusive"),
        "lenient": ("ok", "inconclusive"),
    }


def test_fail_closed_makes_missing_data_a_breach_unless_the_rule_says_otherwise(
    tmp_path: Path,
) -> None:
    assert policies(tmp_path, "fail_closed") == {
        "plain": ("breach", "breach"),
        "lenient": ("ok", "inconclusive"),
    }
