"""The one table of rollback step kinds, from the :class:`StepKind` each executor
module exports (as ``KIND``): the executors the app builds (:mod:`watchdog.wiring`).
The step models stay in :mod:`watchdog.actions.spec` (settings validate plans with
them); a test holds the table and spec's ``Step`` union to the same kinds."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from watchdog.actions import alembic, command, compose, http, kubernetes, render, verify
from watchdog.actions.base import Executor, ExecutorParts, StepKind


def _table(*kinds: StepKind) -> Mapping[str, StepKind]:
    by_name = {k.name: k for k in kinds}
    if len(by_name) != len(kinds):
        raise ValueError("two step kinds share a name")
    return MappingProxyType(by_name)


STEP_KINDS = _table(
    http.KIND, command.KIND, render.KIND, compose.KIND, kubernetes.KIND, alembic.KIND,
    verify.KIND,
)  # fmt: skip


def executors(parts: ExecutorParts) -> dict[str, Executor]:
    """One executor per step kind."""
    return {name: kind.build(parts) for name, kind in STEP_KINDS.items()}
