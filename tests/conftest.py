"""Fixtures for the whole suite. Server fixtures live in tests/servers/."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.prometheus",
    "tests.servers.rollback_target",
    "tests.servers.alertmanager",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Container tests go last, and their images start building in the background now."""
    containers = [i for i in items if i.get_closest_marker("container")]
    if not containers:
        return
    items[:] = [i for i in items if not i.get_closest_marker("container")] + containers
    from tests.container import prepare
    from tests.servers.containers import Podman, unavailable

    if unavailable() is None:
        prepare.start(config, Podman())
