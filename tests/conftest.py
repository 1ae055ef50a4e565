"""Fixtures for the whole suite. Server fixtures live in tests/servers/."""

from __future__ import annotations

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.prometheus",
    "tests.servers.rollback_target",
    "tests.servers.alertmanager",
]
