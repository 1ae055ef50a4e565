"""The kinds table: every source kind is one complete entry, and nothing guesses.

A kind whose module exports ``KIND`` but is missing from the table, a rule model no
kind claims, an entry missing a field, or a rule of a kind the table does not know:
each fails here or at import, never by a silent default (blindness, wiring, replay).
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import watchdog.sources
from watchdog.rulefile.files import SOURCE_KINDS
from watchdog.rulefile.schema import Policy, RuleBase
from watchdog.settings import Settings
from watchdog.sources.base import Replay, SourceKind
from watchdog.sources.blindness import source_key
from watchdog.sources.kinds import KINDS, kind
from watchdog.wiring import sources


def _exported() -> dict[str, SourceKind]:
    """Every ``KIND`` a module of ``watchdog.sources`` exports, by module."""
    out = {}
    for info in pkgutil.iter_modules(watchdog.sources.__path__):
        module = importlib.import_module(f"watchdog.sources.{info.name}")
        if isinstance(getattr(module, "KIND", None), SourceKind):
            out[info.name] = module.KIND
    return out


def _rule_models(base: type[RuleBase] = RuleBase) -> set[type[RuleBase]]:
    """Every concrete rule model: a subclass whose ``source`` is a Literal."""
    found = set()
    for sub in base.__subclasses__():
        annotation = sub.model_fields["source"].annotation
        if typing.get_origin(annotation) is typing.Literal:
            found.add(sub)
        found |= _rule_models(sub)
    return found


def test_every_exported_kind_is_in_the_table_and_every_entry_is_complete() -> None:
    exported = _exported()
    assert set(exported.values()) == set(KINDS.values())
    for module, entry in exported.items():
        assert entry is KINDS[entry.name], module
        assert typing.get_args(entry.rule.model_fields["source"].annotation) == (entry.name,)
        assert callable(entry.build) and callable(entry.unconfigured) and callable(entry.blind)
        assert entry.graph is None or callable(entry.graph)
        assert entry.replay is None or isinstance(entry.replay, Replay)
        if entry.replay is not None:  # an upstream some kind of the table answers for
            assert entry.replay.upstream in KINDS and entry.replay.needs.startswith("WATCHDOG_")
        assert entry.title.strip()
    assert tuple(KINDS) == SOURCE_KINDS


def test_every_rule_model_belongs_to_a_kind() -> None:
    _exported()  # every module imported: a model no kind claims would be found
    assert _rule_models() == {k.rule for k in KINDS.values()}


@pytest.mark.parametrize("missing", [f.name for f in dataclasses.fields(SourceKind)])
def test_an_entry_missing_a_field_fails_at_once(missing: str) -> None:
    full = dataclasses.asdict(KINDS["http"]) | {"rule": KINDS["http"].rule}
    del full[missing]
    with pytest.raises(TypeError, match=missing):
        SourceKind(**full)


def test_a_kind_the_table_does_not_know_is_an_error_not_a_silent_default() -> None:
    rule: Any = SimpleNamespace(source="carrier-pigeon", on_error=Policy.INCONCLUSIVE)
    with pytest.raises(KeyError, match="unknown source kind 'carrier-pigeon'"):
        kind("carrier-pigeon")
    with pytest.raises(KeyError, match="carrier-pigeon"):
        source_key(rule)  # blindness asks the table: no fallback "never blind"


async def test_a_setup_configuring_everything_builds_every_kind(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        rules=[tmp_path],
        postgres_targets={"app": SecretStr("postgresql://w@127.0.0.1:9/app")},
        redis_targets={"cache": SecretStr("redis://127.0.0.1:9/0")},
        loki_url="http://127.0.0.1:9",
        sentry_org="acme",
        sentry_token="sntrys-0123456789abcdef",
    )
    async with httpx.AsyncClient() as client:
        built = sources(settings, store=None, probe_client=client, client=client)
        try:
            assert built.kinds == set(KINDS)
            # a kind built from another follows it (judge rules are Prometheus queries)
            assert built.get("judge") is built.get("prometheus")
        finally:
            await built.close()
    bare = sources(Settings(_env_file=None, rules=[tmp_path]), store=None)
    try:
        assert bare.kinds == set(KINDS) - {"postgres", "redis", "loki", "sentry"}
    finally:
        await bare.close()


def _module_exports(package: Any, attribute: str) -> list[Any]:
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        value = getattr(module, attribute, None)
        found += list(value) if isinstance(value, tuple) else [value] if value else []
    return found


def test_every_step_kind_is_in_the_table_with_its_spec_model() -> None:
    import watchdog.actions
    from watchdog.actions.base import StepKind
    from watchdog.actions.kinds import STEP_KINDS
    from watchdog.actions.spec import Step

    exported = [k for k in _module_exports(watchdog.actions, "KIND") if isinstance(k, StepKind)]
    assert set(exported) == set(STEP_KINDS.values())
    union = typing.get_args(typing.get_args(Step)[0])
    assert {k.step for k in exported} == set(union)  # a step model no executor runs: fails
    for entry in exported:
        assert typing.get_args(entry.step.model_fields["kind"].annotation) == (entry.name,)


async def test_every_channel_kind_is_in_the_table_and_builds_under_its_name() -> None:
    import watchdog.notify
    from watchdog.foundation.clock import FakeClock
    from watchdog.notify.channel import ChannelKind, ChannelParts
    from watchdog.notify.kinds import CHANNEL_KINDS, channels
    from watchdog.notify.render import Links

    exported = [k for k in _module_exports(watchdog.notify, "CHANNELS")]
    assert all(isinstance(k, ChannelKind) for k in exported)
    from watchdog.notify.config import routed

    assert routed() == ("slack", "slack_webhook", "webhook", "pagerduty")  # markers: never routed
    assert set(exported) == set(CHANNEL_KINDS.values())
    secret = "s3cret-0123456789abcdef"
    settings = Settings(
        _env_file=None, sentry_org="acme", sentry_token=secret,
        notify={"slack_bot_token": f"xoxb-{secret}", "slack_webhook_url": f"https://hooks.example/{secret}",
                "webhook_url": "https://hook.example/in", "pagerduty_routing_key": secret,
                "grafana_url": "https://grafana.example", "grafana_token": secret},
    )  # fmt: skip
    async with httpx.AsyncClient() as client:
        parts = ChannelParts(settings, None, client, FakeClock(), Links("", ""))
        built = channels(parts)
        assert {name: c.name for name, c in built.items()} == {n: n for n in CHANNEL_KINDS}
        bare = ChannelParts(Settings(_env_file=None), None, client, FakeClock(), Links("", ""))
        assert channels(bare) == {}
