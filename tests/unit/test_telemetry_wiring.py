"""Loki and Sentry rules are refused at start unless their service is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shipped import REPO
from watchdog.foundation.errors import ConfigError
from watchdog.rulefile.load import load_rules
from watchdog.settings import Settings
from watchdog.wiring import check_targets


def test_loki_and_sentry_rules_need_their_settings(tmp_path: Path) -> None:
    rules = load_rules([REPO / "rules/alternatives/data-integrity-loki.yml",
                        REPO / "rules/alternatives/sentry.yml"])  # fmt: skip
    with pytest.raises(ConfigError) as info:
        check_targets(rules, Settings(_env_file=None))
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "rule 'rls-violations-loki' reads loki, which is not configured (set WATCHDOG_LOKI_URL)",
        "rule 'fk-violations-loki' reads loki, which is not configured (set WATCHDOG_LOKI_URL)",
        "rule 'sentry-new-issues' reads sentry, which is not configured "
        "(set WATCHDOG_SENTRY_ORG and WATCHDOG_SENTRY_TOKEN)",
    ]
    configured = Settings(_env_file=None, loki_url="http://loki:3100", sentry_org="acme",
                          sentry_token="sntrys-0123456789abcdef")  # fmt: skip
    check_targets(rules, configured)  # no problem once configured
