"""The Source port: one small Protocol every source kind implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from watchdog.model import Sample


@dataclass(frozen=True)
class SampleContext:
    """What a source may know about the sample it takes.

    ``at`` is the evaluation instant: "now" for live windows, a past instant for
    baselines (``started_at - offset``) and for ``watchdog replay``. ``since`` is when
    the window opened: data from before it belongs to the previous version, so sources
    that read ranges keep them after it (``None``: no such limit, as for baselines).
    """

    window_id: str
    variables: Mapping[str, str]
    at: float
    live: bool = True  # False when `at` is in the past: sources that cannot look back refuse
    since: float | None = None
    # True when ``since`` is a rollback's success (a confirming window): the restored
    # version's evidence starts at its first scrape after it, not at the instant itself.
    restored: bool = False


class Source(Protocol):
    """Takes one sample for one rule.

    Implementations never raise for the failures of what they watch: a refused
    connection, a timeout, a malformed answer come back as ``Sample.failed`` (with
    ``transient`` set as appropriate) and an empty answer as ``Sample.no_data``.
    """

    async def sample(self, rule: Any, ctx: SampleContext) -> Sample:
        """Sample ``rule`` (a rule model of this source's kind) at ``ctx.at``."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
