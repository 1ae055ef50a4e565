"""Builders the composition root uses: each turns Settings into one assembled part.

Only :mod:`watchdog.app` calls these; they read Settings and construct transports so
that nothing else in the package has to. Client libraries only some setups need
(asyncpg, redis, slack_sdk) are imported where they are configured: each costs
megabytes of idle RSS (bench/footprint.py) that a plain Prometheus setup never uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from watchdog.actions.base import Executor, ExecutorParts
from watchdog.actions.kinds import executors as step_executors
from watchdog.deploys.admission import KnownVersions
from watchdog.foundation.clock import Clock, SystemClock
from watchdog.foundation.errors import ConfigError
from watchdog.foundation.secretcheck import without_credentials
from watchdog.ha.coord import Coordinator, Fence, SingleNode
from watchdog.ha.health import Health, StoreClock
from watchdog.lifecycle.detect import DeployDetector
from watchdog.lifecycle.escalation import Escalator
from watchdog.lifecycle.windows import WindowService
from watchdog.notify.channel import Channel, ChannelParts
from watchdog.notify.delivery import Backoff, DeliveryWorker, journal_report
from watchdog.notify.kinds import channels as configured_channels
from watchdog.notify.outbox import Outbox
from watchdog.notify.render import Links
from watchdog.notify.slack import SlackChannel
from watchdog.plumbing.metrics import Metrics
from watchdog.rulefile.failmode import apply_missing_data
from watchdog.rulefile.livecheck import SelectorWatch, counting
from watchdog.rulefile.load import RuleSet, load_rules
from watchdog.settings import Settings
from watchdog.sources import Source, Sources
from watchdog.sources.base import Parts
from watchdog.sources.kinds import KINDS, kind
from watchdog.sources.prometheus import PrometheusSource, basic_auth
from watchdog.sources.versions import VersionReader
from watchdog.store.base import Store
from watchdog.store.journal import Journal
from watchdog.web.connections import ConnectionLimits

if TYPE_CHECKING:
    from watchdog.ha.lease import RedisLease
    from watchdog.web.slack import SlackInteractions


@dataclass
class NotifyParts:
    """The notification side: outbox, delivery worker, Slack buttons, escalation."""

    outbox: Outbox
    worker: DeliveryWorker
    channels: dict[str, Channel]
    interactions: SlackInteractions | None
    escalator: Escalator | None


def connection_limits(s: Settings) -> ConnectionLimits:
    """The HTTP server's deadlines, keep-alive limits and connection cap."""
    return ConnectionLimits(
        header_timeout=s.http_header_timeout,
        body_timeout=s.http_body_timeout,
        keepalive_timeout=s.http_keepalive_timeout,
        max_keepalive_requests=s.http_max_keepalive_requests,
        max_connections=s.max_connections,
    )


def channels(
    s: Settings, store: Store, client: httpx.AsyncClient, clock: Clock
) -> tuple[dict[str, Channel], SlackChannel | None]:
    """The configured notification channels, by name (and the Slack bot, if any):
    :data:`~watchdog.notify.kinds.CHANNEL_KINDS`, deploy markers included."""
    links = Links(s.base_url, without_credentials(s.prometheus_url))
    built = configured_channels(ChannelParts(s, store, client, clock, links))
    slack = built.get("slack")
    return built, slack if isinstance(slack, SlackChannel) else None


def notify_parts(
    s: Settings,
    clock: Clock,
    store: Store,
    journal: Journal,
    outbox: Outbox,
    channels: dict[str, Channel],
    slack: SlackChannel | None,
    windows: WindowService,
    metrics: Metrics,
) -> NotifyParts:
    """Delivery worker, Slack interactions and escalation around the outbox."""
    n = s.notify
    backoff = Backoff(n.timeout, n.backoff, n.backoff_max, n.max_attempts)
    report = journal_report(journal, clock)
    worker = DeliveryWorker(
        store,
        channels,
        clock,
        report,
        backoff=backoff,
        wake=outbox.wake,
        poll=n.poll,
        metrics=metrics,
    )
    interactions = None
    if n.slack_signing_secret is not None and slack is not None:
        from watchdog.web.slack import SlackAccess, SlackInteractions

        access = SlackAccess(frozenset(n.oncall_ids), frozenset(n.approver_ids))
        secret = n.slack_signing_secret.get_secret_value()
        interactions = SlackInteractions(windows, secret, access, slack, clock, store)
    escalator = None
    if n.escalate_after is not None:
        escalator = Escalator(store, journal, clock, n.escalate_after)
    return NotifyParts(outbox, worker, channels, interactions, escalator)


def sources(
    s: Settings,
    store: Store,
    probe_client: httpx.AsyncClient | None = None,
    overrides: Mapping[str, Source] | None = None,
    *,
    client: httpx.AsyncClient | None = None,
) -> Sources:
    """Every configured source kind (:data:`~watchdog.sources.kinds.KINDS`), built in
    the table's order.

    ``client`` is the app's shared client (Prometheus, Loki, Sentry); ``probe_client``
    carries the ``http`` probes and scrapes (their own pool: a hanging watched service
    must not starve a rollback's requests); ``overrides`` replace kinds by name (a kind
    built from another, as ``judge`` from Prometheus, follows its replacement).
    """
    built: dict[str, Source] = dict(overrides or {})
    for name, entry in KINDS.items():
        if name not in built:
            made = entry.build(Parts(s, store, client, probe_client, built))
            if made is not None:  # rules of a kind not configured are refused (check_targets)
                built[name] = made
    return Sources(built)


def selector_watch(s: Settings, sources: Sources) -> SelectorWatch | None:
    """Tells a window once when a Prometheus rule's selector matches no series."""
    prometheus = sources.get("prometheus") if "prometheus" in sources.kinds else None
    if not isinstance(prometheus, PrometheusSource):
        return None
    return SelectorWatch(counting(prometheus.instant), s.service_label)


def version_reader(s: Settings, client: httpx.AsyncClient) -> VersionReader:
    """Reads which version a service serves (verify steps, deploy detection)."""
    token = s.prometheus_token.get_secret_value() if s.prometheus_token else None
    return VersionReader(
        client, s.prometheus_url, prometheus_token=token, prometheus_basic=basic_auth(s)
    )


def executors(
    s: Settings, client: httpx.AsyncClient, versions: VersionReader, clock: Clock
) -> dict[str, Executor]:
    """One executor per step kind (:data:`~watchdog.actions.kinds.STEP_KINDS`)."""
    return step_executors(ExecutorParts(s, client, versions, clock))


def detector(
    s: Settings,
    clock: Clock,
    versions: VersionReader,
    windows: WindowService,
    store: Store,
    metrics: Metrics,
    known: KnownVersions | None = None,
) -> DeployDetector | None:
    """Deploy auto-detection, when services to watch are configured."""
    if not s.detect:
        return None
    return DeployDetector(
        s.detect,
        reader=versions,
        windows=windows,
        store=store,
        clock=clock,
        metrics=metrics,
        known=known,
    )


def known_versions(s: Settings) -> KnownVersions | None:
    """The version history of the services deploy detection watches (None: no tracking)."""
    if not s.detect:
        return None
    return KnownVersions([(w.service, w.environment) for w in s.detect])


def health(s: Settings, store: Store, clock: Clock, metrics: Metrics) -> Health:
    """The store and clock probe; a test's own clock is left alone (the probe then
    measures the real clock, which SQLite shares)."""
    own = clock if isinstance(clock, StoreClock) else StoreClock(SystemClock())
    return Health(store, own, metrics.registry, max_skew=s.max_clock_skew)


def coordinator(
    s: Settings,
    metrics: Metrics,
    on_acquire: Callable[[], None],
    *,
    fence: Fence,
    eligible: Callable[[], str | None] | None = None,
) -> tuple[Coordinator, RedisLease | None]:
    """The Redis lease when ``leader_redis_url`` is set (the caller runs and closes it),
    else the single node that always leads. Either way the store issues the tokens."""
    if s.leader_redis_url is None:
        metrics.set_leader(True)
        return SingleNode(fence, on_acquire), None
    from redis.asyncio import Redis

    from watchdog.ha.lease import RedisLease, client_options

    client = Redis.from_url(s.leader_redis_url.get_secret_value(), **client_options(s.leader_lease))
    lease = RedisLease(
        client,
        key=s.leader_key,
        ttl=s.leader_lease,
        metrics=metrics,
        on_acquire=on_acquire,
        fence=fence,
        eligible=eligible,
    )
    return lease, lease


def checked_rules(settings: Settings) -> RuleSet:
    """Every rule file, validated, targets checked; ConfigError lists every problem."""
    rules = apply_missing_data(load_rules(settings.rules), settings.missing_data)
    check_targets(rules, settings)
    return rules


def check_targets(rules: RuleSet, settings: Settings) -> None:
    """Refuse rules these settings cannot read (a postgres/redis target not configured,
    Loki or Sentry not set up): each kind says why (``SourceKind.unconfigured``)."""
    problems = []
    for rule in rules.rules:
        problem = kind(rule.source).unconfigured(rule, settings)
        if problem is not None:
            problems.append(f"{rule.origin}: rule {rule.name!r} {problem}")
    if problems:
        raise ConfigError(problems)
