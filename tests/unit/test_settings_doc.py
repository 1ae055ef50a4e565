"""docs/settings.md is generated from the Settings model and must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.config.settingsdoc import DOC, Row, render, rows
from watchdog.notify.config import NotifySettings
from watchdog.settings import Settings

# Settings that are only valid together with another.
COMPANIONS = {
    "WATCHDOG_DEFAULT_PLAN": {"WATCHDOG_PLANS": '{"undo": {"steps": [{"name": "u", '
                              '"kind": "command", "argv": ["true"]}]}}'},
    "WATCHDOG_ALERTMANAGER_USERNAME": {"WATCHDOG_ALERTMANAGER_PASSWORD": "a-long-am-password-01"},
    "WATCHDOG_ALERTMANAGER_PASSWORD": {"WATCHDOG_ALERTMANAGER_USERNAME": "am"},
    "WATCHDOG_PROMETHEUS_USERNAME": {"WATCHDOG_PROMETHEUS_PASSWORD": "a-long-prom-password-01"},
    "WATCHDOG_PROMETHEUS_PASSWORD": {"WATCHDOG_PROMETHEUS_USERNAME": "reader"},
    "WATCHDOG_NOTIFY__SLACK_SIGNING_SECRET": {"WATCHDOG_NOTIFY__SLACK_BOT_TOKEN": "xoxb-0000-0000-example"},
    "WATCHDOG_NOTIFY__GRAFANA_URL": {"WATCHDOG_NOTIFY__GRAFANA_TOKEN": "glsa_0123456789abcdef"},
    "WATCHDOG_NOTIFY__GRAFANA_TOKEN": {"WATCHDOG_NOTIFY__GRAFANA_URL": "http://grafana"},
}  # fmt: skip


def test_the_committed_page_is_what_the_model_renders() -> None:
    assert DOC.read_text() == render(), "docs/settings.md is stale: run `make settings-doc`"


def test_every_setting_has_a_row_with_type_default_and_example() -> None:
    found = {r.path for r in rows(Settings)}
    nested = {f"notify.{n}" for n in NotifySettings.model_fields}
    assert found == (set(Settings.model_fields) - {"notify"}) | nested
    for row in rows(Settings):
        assert row.type and row.default and row.example and row.example != "…", row


@pytest.mark.parametrize("row", rows(Settings), ids=lambda r: r.env)
def test_every_example_is_accepted_from_the_environment(
    row: Row, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("WATCHDOG_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env file
    env, example = row.env, row.example
    monkeypatch.setenv(env, example)
    for name, value in COMPANIONS.get(env, {}).items():
        monkeypatch.setenv(name, value)
    if env == "WATCHDOG_LISTEN_HOST" and example not in {"127.0.0.1", "localhost"}:
        monkeypatch.setenv("WATCHDOG_API_TOKEN", "a-long-random-token-0123456789")
    Settings()
