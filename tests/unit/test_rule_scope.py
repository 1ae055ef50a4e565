"""Rules scoped to the services they fit (`services:` globs, `match:` on labels, on a
file, a group or a rule), chosen where a window's rules are: the engine's tick, the
window's detail, its baselines. And a pending rule is never told at critical."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.world import World, app_settings
from watchdog.foundation.clock import FakeClock
from watchdog.foundation.errors import ConfigError
from watchdog.foundation.model import Deployment, EventKind, Sample, WindowPhase
from watchdog.notify import render
from watchdog.rulefile.load import check_report, load_rules
from watchdog.sources import SampleContext

RULES = """\
services: [api, worker]      # the file's scope: its groups fit these two
groups:
  - name: everywhere
    interval: 10s
    rules:
      - name: errors
        source: prometheus
        query: errors{service="{{ service }}"}
        threshold: "> 0.05"
        for: 30s
        severity: critical
  - name: api-only
    services: ["api*"]
    interval: 10s
    rules:
      - name: api-health
        source: http
        url: http://api:8000/health
  - name: worker-only
    services: [worker]
    interval: 10s
    rules:
      - name: celery-queue
        source: prometheus
        query: celery_queue_length{queue="default"}
        threshold: "> 100"
      - name: worker-health
        source: http
        url: http://worker:9000/ping
      - name: canary-only
        source: prometheus
        query: canary_errors
        threshold: "> 0"
        services: ["*"]
        match: {environment: production, track: "~canary|blue"}
"""


PLANS = {"noop": {"steps": [{"name": "noop", "kind": "command", "argv": ["true"]}]}}


def deploy(service: str, **labels: str) -> Deployment:
    return Deployment(service, "production", "v2", previous_version="v1", labels=labels)


def test_the_nearest_scope_wins_rule_then_group_then_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    rules = load_rules([path])

    def names(d: Deployment) -> list[str]:
        return [r.name for r in rules.for_deployment(d)]

    assert names(deploy("api")) == ["errors", "api-health"]
    assert names(deploy("worker")) == ["errors", "celery-queue", "worker-health"]
    assert names(deploy("worker", track="canary")) == [
        "errors",
        "celery-queue",
        "worker-health",
        "canary-only",
    ]
    assert names(deploy("billing")) == []  # outside the file's scope
    assert names(deploy("billing", track="blue")) == ["canary-only"]
    staging = Deployment("worker", "staging", "v2", labels={"track": "canary"})
    assert "canary-only" not in names(staging)


def test_check_reports_a_bad_scope_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "groups:\n"
        "  - name: g\n"
        "    services: ['api/v2']\n"
        "    rules:\n"
        "      - name: a\n"
        "        source: prometheus\n"
        "        query: up\n"
        "        threshold: '> 0'\n"
        "        match: {tier: '~(web'}\n"
    )
    summaries, problems = check_report([path])
    assert summaries == []
    assert len(problems) == 2, problems
    assert problems[0] == f"{path}:3: services: 'api/v2' is not a service name or glob" + (
        " (letters, digits, _ . : - * ? [ ])"
    )
    assert problems[1].startswith(f"{path}:9: tier: not a regular expression RE2 accepts")
    with pytest.raises(ConfigError):
        load_rules([path])


@dataclass
class ScriptedSource:
    """Records which rule each window sampled; answers from a table."""

    values: dict[str, Sample] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (window id, rule)

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        self.calls.append((ctx.window_id, rule.name))
        return self.values.get(rule.name, Sample.of(0.0))

    async def close(self) -> None:
        return None


async def test_each_window_evaluates_and_shows_only_the_rules_that_fit(tmp_path: Path) -> None:
    clock = FakeClock()
    prometheus, http = ScriptedSource(), ScriptedSource()
    settings = app_settings(tmp_path, RULES, window=300)
    sources = {"prometheus": prometheus, "http": http}
    async with World.of(settings, clock=clock, sources=sources, executors=None) as world:
        parts = world.parts
        api = await parts.windows.open_window(deploy("api"), window_seconds=300, actor="t")
        worker = await parts.windows.open_window(deploy("worker"), window_seconds=300, actor="t")
        await world.run_for(30, step=10)
        detail = await parts.windows.detail(api.id)
        opened_event = (await parts.store.list_events(worker.id))[0]
    calls = prometheus.calls + http.calls
    assert {r for w, r in calls if w == api.id} == {"errors", "api-health"}
    assert {r for w, r in calls if w == worker.id} == {"errors", "celery-queue", "worker-health"}
    # One watchdog, each service probed at its own URL.
    assert [v.name for v in detail.rules] == ["errors", "api-health"]
    assert "(3 rules)" in opened_event.message


async def test_a_rule_scoped_out_does_not_keep_a_window_from_passing(tmp_path: Path) -> None:
    # Each window judged all along by the rules that fit it: the worker's Celery rule,
    # never evaluated for the api, is not "a rule that saw nothing" there.
    clock = FakeClock()
    sources = {"prometheus": ScriptedSource(), "http": ScriptedSource()}
    # every rule rolls back, so each one decides whether its window passed
    rollback = RULES.replace('threshold: "> 100"', 'threshold: "> 100"\n        action: rollback')
    rollback = rollback.replace(
        "severity: critical", "severity: critical\n        action: rollback"
    )
    settings = app_settings(tmp_path, rollback, window=60, default_plan="noop", plans=PLANS)
    async with World.of(settings, clock=clock, sources=sources, executors=None) as world:
        parts = world.parts
        api = await parts.windows.open_window(deploy("api"), window_seconds=60, actor="t")
        await world.run_for(80, step=10)
        final = await parts.store.get_window(api.id)
    assert final is not None and final.phase is WindowPhase.PASSED, final


async def test_a_pending_critical_rule_is_told_as_a_warning_and_firing_as_critical(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    source = ScriptedSource(values={"errors": Sample.of(0.5)})
    settings = app_settings(tmp_path, RULES, window=300)
    sources = {"prometheus": source, "http": ScriptedSource()}
    async with World.of(settings, clock=clock, sources=sources, executors=None) as world:
        parts = world.parts
        w = await parts.windows.open_window(deploy("api"), window_seconds=300, actor="t")
        await world.run_for(50, step=10)
        events = await parts.store.list_events(w.id)
    pending = [e for e in events if e.kind is EventKind.RULE_PENDING]
    firing = [e for e in events if e.kind is EventKind.RULE_FIRING]
    assert len(pending) == 1 and len(firing) == 1
    assert pending[0].data["severity"] == "warning" and render.severity(pending[0]) == "warning"
    assert render.severity(firing[0]) == "critical"
    # An event stored before this change (told at the rule's severity) is capped too.
    old = pending[0].__class__(**{**pending[0].__dict__, "data": {"severity": "critical"}})
    assert render.severity(old) == "warning"
