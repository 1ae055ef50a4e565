"""The ``judge`` kind: judge rules' counters are one Prometheus query
(:mod:`watchdog.rulefile.judge`), sampled by the Prometheus source (a replaced Prometheus
included) and blamed on Prometheus when it cannot answer."""

from __future__ import annotations

from watchdog.rulefile.judge import JudgeRule
from watchdog.sources.base import Parts, Source, SourceKind, always, promql
from watchdog.sources.prometheus import HISTORY


def _build(p: Parts) -> Source:
    return p.built["prometheus"]  # kinds build in table order: Prometheus comes first


KIND = SourceKind(
    name="judge", rule=JudgeRule, build=_build, unconfigured=always,
    blind=lambda rule: "Prometheus", replay=HISTORY,
    graph=promql, title="judge",
)  # fmt: skip
