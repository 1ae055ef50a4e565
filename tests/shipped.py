"""The shipped rule pack (rules/), loaded as it is; tests override only timing.

Tests compress the runbook's minutes into seconds by changing ``for`` and ``interval``
(judge rules: ``warmup`` and ``restart_every``) and the few things that name this
machine (probe URLs, log paths). Queries, thresholds, limits, policies and actions stay
exactly as shipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
TIMING = frozenset({"for", "interval", "warmup", "restart_every"})
JUDGE_TIMING = frozenset({"interval", "warmup", "restart_every"})  # a judge has no `for`
LOCAL = frozenset({"url", "path"})  # where the thing lives on this machine


def shipped(file: str, name: str, **overrides: Any) -> dict[str, Any]:
    """Rule ``name`` of ``rules/FILE`` as written, with ``overrides`` applied.

    Only timing fields and the local address of what is watched may be overridden;
    timing a rule's kind does not have is left out (a judge rule has no ``for``, other
    kinds no ``warmup``), so one set of compressed timings fits the whole pack.
    """
    bad = set(overrides) - TIMING - LOCAL
    if bad:
        raise ValueError(f"tests may only override {sorted(TIMING | LOCAL)}, not {sorted(bad)}")
    data = yaml.safe_load((RULES / file).read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule["name"] == name:
                kind = JUDGE_TIMING if rule["source"] == "judge" else TIMING - JUDGE_TIMING
                keep = {
                    k: v for k, v in overrides.items() if k in LOCAL or k in kind | {"interval"}
                }
                return {**rule, **keep}
    raise KeyError(f"no rule {name!r} in rules/{file}")


def shipped_names(file: str) -> list[str]:
    """Every rule name of ``rules/FILE``."""
    data = yaml.safe_load((RULES / file).read_text())
    return [r["name"] for g in data["groups"] for r in g["rules"]]


def write_rules(path: Path, rules: list[dict[str, Any]], interval: str = "1s") -> Path:
    """A rule file with one group holding ``rules``, evaluated every ``interval``."""
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "test", "interval": interval, "rules": rules}]})
    )
    return path
