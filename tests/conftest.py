"""Fixtures for the whole suite. Server fixtures live in tests/servers/.

``make test`` runs the suite on pytest-xdist workers (``--dist loadscope``): most tests
wait on real servers (scrapes, ``for:`` windows), so a few at once share two cores well.
Each module is one work unit (its module-scoped servers start once, on one worker);
every server fixture takes free ports and a temporary directory of its own, and the
session ones (PostgreSQL) start once per worker. The container tests are one group, run
last on one worker, and their images are built once, by the controller (prepare.py).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.prometheus",
    "tests.servers.rollback_target",
    "tests.servers.alertmanager",
]
# Modules that take minutes of waiting (measured with --durations): scheduled first, so
# they overlap with the many short ones instead of ending the run alone.
LONG = (
    "tests/e2e/test_confirm_scrape.py",
    "tests/stack/test_runbook_stack.py",
    "tests/e2e/test_crash_safety.py",
    "tests/e2e/test_ha_faults.py",
    "tests/e2e/test_outcomes.py",
    "tests/e2e/test_ha.py",
    "tests/e2e/test_ha_fencing.py",
)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _rank(item: pytest.Item) -> int:
    if item.get_closest_marker("container"):
        return len(LONG) + 1
    module = _module(item)
    return LONG.index(module) if module in LONG else len(LONG)


def pytest_configure(config: pytest.Config) -> None:
    """On the xdist controller: build the container images once, for all workers."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.getoption("numprocesses", None) in (None, 0):
        return
    config.pluginmanager.register(ModuleUnits(), "wd-units")
    from tests.container.prepare import Publisher
    from tests.servers.containers import Podman, unavailable

    if unavailable() is None:
        config.pluginmanager.register(Publisher(config, Podman()), "wd-images")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long modules first, container tests last. Without xdist the images start building
    now; under xdist the controller's Publisher builds them."""
    items.sort(key=_rank)  # stable: the order inside each rank stays as collected
    if hasattr(config, "workerinput") or config.getoption("numprocesses", None):
        return
    if not any(i.get_closest_marker("container") for i in items):
        return
    from tests.container import prepare
    from tests.servers.containers import Podman, unavailable

    if unavailable() is None:
        prepare.start(config, Podman())


class ModuleUnits:
    """xdist controller plugin: one work unit per module, one for all container tests.

    xdist's own ``loadgroup`` does not group on pytest 9.2 (it renames node ids, which
    pytest no longer reads: pytest-xdist issue 1386), so the grouping is a scheduler.
    """

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """``--dist loadscope`` with the units above (and the collection order kept)."""
        if config.getvalue("dist") != "loadscope":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class Units(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                module = nodeid.split("::", 1)[0]
                return "tests/container" if module.startswith("tests/container/") else module

        return Units(config, log)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that collected nothing fails (exit 1, said why) instead of pytest's exit 5,
    which CI scripts easily mistake for something other than a red run."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nno tests were collected: run from the repository root (make test)")
