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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected nothing fails (exit 1, said why) instead of pytest's exit 5,
    which CI scripts easily mistake for something other than a red run."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nno tests were collected: run from the repository root (make test)")
