"""The Source port: one small Protocol every source kind implements, and
:class:`SourceKind`, the one value each ``sources/<kind>.py`` exports to say everything
the rest of the service needs to know about its kind (:mod:`watchdog.sources.kinds`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.foundation.model import Sample

if TYPE_CHECKING:
    import httpx

    from watchdog.rulefile.schema import RuleBase
    from watchdog.settings import Settings
    from watchdog.sources.promparse import RangeSeries


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


class History(Protocol):
    """A source with history, as ``watchdog replay`` opens it: range queries."""

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` at ``start, start + step, …, end``."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


@dataclass(frozen=True)
class Parts:
    """What a kind's builder may use: the settings and the shared pieces."""

    settings: Settings
    store: Any  # the store (only ``alertmanager`` reads it: its AlertReader role)
    client: httpx.AsyncClient | None  # the app's shared client
    probe_client: httpx.AsyncClient | None  # probes and scrapes: their own pool
    built: Mapping[str, Source]  # kinds built before this one (``judge`` reuses Prometheus)


@dataclass(frozen=True)
class Replay:
    """How ``watchdog replay`` reads a kind's history.

    ``upstream`` names the range source answering it (``judge`` rules read
    Prometheus'), ``needs`` the settings that configure it, ``grid`` the step clamped
    ranges round up to (None: the scrape interval), ``open`` builds that range source
    from the settings for the CLI (None when the settings do not configure it; the float
    is the per-query timeout).
    """

    upstream: str
    needs: str
    grid: float | None
    open: Callable[[Settings, float], History | None]


def always(rule: Any, settings: Settings) -> str | None:
    """A kind every setup can read: nothing to configure."""
    return None


def missing_target(rule: Any, targets: Mapping[str, object], env: str) -> str | None:
    """A rule naming a target the settings do not configure (``env`` configures them)."""
    if rule.target in targets:
        return None
    names = ", ".join(sorted(targets)) or "none"
    return (
        f"names {rule.source} target {rule.target!r}, which is not configured "
        f"(set {env}; configured: {names})"
    )


def needs(rule: Any, ok: bool, what: str) -> str | None:
    """A rule of a kind the settings do not configure (``what``: the settings to set)."""
    return None if ok else f"reads {rule.source}, which is not configured (set {what})"


def promql(rule: Any) -> str | None:
    """A rule's own ``query``: the PromQL its Prometheus graph link shows."""
    query = getattr(rule, "query", None)
    return query if isinstance(query, str) else None


def never_blind(rule: Any) -> None:
    """A kind whose failures are not blindness (its failure is its value, or it reads
    the watchdog's own store)."""
    return None


@dataclass(frozen=True)
class SourceKind:
    """Everything about one source kind, in the module that implements it.

    Every field is required (no defaults): an entry that forgets one fails at import.

    - ``name``: the rule file's ``source:`` value;
    - ``rule``: the pydantic model of its rules (its ``source`` a ``Literal[name]``);
    - ``build``: the source from settings and shared clients, None when not configured;
    - ``unconfigured``: why a rule cannot be read with these settings (what to set), or
      None (:func:`always`); ``serve`` refuses such rules;
    - ``blind``: what a failed sample is blamed on ("watchdog blind"), or None
      (:func:`never_blind`);
    - ``replay``: how replay reads its history, None when it has none;
    - ``graph``: the PromQL behind a rule's Prometheus graph link, None when the kind
      does not query Prometheus (the kinds with one are those Prometheus answers);
    - ``title``: how people are told which service to check.
    """

    name: str
    rule: type[RuleBase]
    build: Callable[[Parts], Source | None]
    unconfigured: Callable[[Any, Settings], str | None]
    blind: Callable[[Any], str | None]
    replay: Replay | None
    graph: Callable[[Any], str | None] | None
    title: str
