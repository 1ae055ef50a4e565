"""The one table of source kinds, assembled from the :class:`SourceKind` each
``sources/<kind>.py`` exports (as ``KIND``).

Everything that differs by kind is read from here: the rule file's ``source:`` union
(:mod:`watchdog.rulefile.files`), the sources built from settings
(:mod:`watchdog.wiring`), the rules a setup cannot read, "watchdog blind"
(:mod:`watchdog.sources.blindness`), replay (:mod:`watchdog.evaluation.replay`), graph links and how
a
kind is named to people. A kind missing here is an unknown ``source:`` in every rule
file; :func:`kind` raises for it rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from watchdog.sources import (
    alertmanager,
    http,
    judge,
    log,
    loki,
    postgres,
    prometheus,
    pushgateway,
    redis,
    scrape,
    sentry,
)
from watchdog.sources.base import SourceKind


def _table(*kinds: SourceKind) -> Mapping[str, SourceKind]:
    by_name = {k.name: k for k in kinds}
    if len(by_name) != len(kinds):
        raise ValueError("two source kinds share a name")
    return MappingProxyType(by_name)


# The order is the one rule-file errors list the kinds in.
KINDS = _table(
    prometheus.KIND, http.KIND, postgres.KIND, redis.KIND, log.KIND, alertmanager.KIND,
    judge.KIND, loki.KIND, scrape.KIND, sentry.KIND,
    pushgateway.KIND,
)  # fmt: skip


def kind(name: str) -> SourceKind:
    """The kind named ``name``; KeyError naming the known kinds for any other."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown source kind {name!r} (known: {', '.join(KINDS)})") from None
