"""The ``alertmanager`` source: how many matching alerts are firing for the window.

Alerts arrive through the webhook receiver (``watchdog/web/alertmanager.py``) and are
recorded in the store; this source only reads them. The value is the number of
distinct alerts (fingerprints) that match the rule and the window's
service and environment and are firing at the evaluation instant; ``resolved`` ones
stop counting. Occurrences that started before the deploy are not the deploy's doing
and count only when the rule says ``include_preexisting: true``. No matching alert is
a healthy 0, not "no data": silence is what Alertmanager sends when all is well.

The store is asked for the window's own alerts (its service, its environment, the
rule's ``equal`` labels: an index lookup), so a storm of other services' alerts can
neither hide the window's alert nor slow its evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from watchdog.foundation import regex
from watchdog.foundation.alerts import Alert, AlertMatch, AlertStatus
from watchdog.foundation.model import Sample, Window
from watchdog.rulefile.schema import AlertmanagerRule
from watchdog.sources.base import Parts, SampleContext, SourceKind, always, never_blind

# More matching alerts than this for one window says Alertmanager is flooding; the
# count is capped (still far above any threshold) rather than reading without bound.
MAX_ALERTS = 10_000


class AlertReader(Protocol):
    """What the source reads from the store."""

    async def get_window(self, window_id: str) -> Window | None:
        """One window, or None."""
        ...

    async def list_alerts(
        self,
        *,
        status: AlertStatus | None = None,
        active_since: float | None = None,
        started_since: float | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 1000,
    ) -> list[Alert]:
        """Recorded alerts, filtered."""
        ...


def rule_match(rule: AlertmanagerRule) -> AlertMatch:
    """The matcher a rule describes."""
    return AlertMatch(
        equal=rule.equal,
        regex={k: regex.compiled(v) for k, v in rule.match_re.items()},
        service_label=rule.service_label,
        environment_label=rule.environment_label,
    )


def wanted_labels(match: AlertMatch, window: Window) -> dict[str, str]:
    """The label values every counted alert carries: the store's index lookup."""
    d = window.deployment
    wanted = {**match.equal, match.service_label: d.service}
    if match.environment_label is not None:
        wanted[match.environment_label] = d.environment
    return wanted


def counted(
    rule: AlertmanagerRule, match: AlertMatch, window: Window, alert: Alert, at: float, live: bool
) -> bool:
    """Whether ``alert`` counts towards ``rule`` (whose matcher is ``match``) at ``at``."""
    if not rule.include_preexisting and alert.starts_at < window.started_at:
        return False
    # Live: Alertmanager's word (firing/resolved) rules, whatever the clocks say.
    active = alert.status is AlertStatus.FIRING if live else alert.active_at(at)
    if not active:
        return False
    d = window.deployment
    return match.matches(alert.labels, d.service, d.environment)


class AlertmanagerSource:
    """Counts recorded alerts matching an :class:`AlertmanagerRule`."""

    def __init__(self, store: AlertReader) -> None:
        self._store = store

    async def sample(self, rule: AlertmanagerRule, ctx: SampleContext) -> Sample:
        """The number of matching alerts firing at ``ctx.at``."""
        window = await self._store.get_window(ctx.window_id)
        if window is None:
            return Sample.failed(f"no window {ctx.window_id!r}", transient=False)
        match = rule_match(rule)
        recent = await self._store.list_alerts(
            active_since=ctx.at,
            started_since=None if rule.include_preexisting else window.started_at,
            labels=wanted_labels(match, window),
            limit=MAX_ALERTS,
        )
        hits = [a for a in recent if counted(rule, match, window, a, ctx.at, ctx.live)]
        # Distinct fingerprints: two HA Prometheus replicas may give the same alert
        # slightly different starts; it is still one alert.
        count = len({a.fingerprint for a in hits})
        names = sorted({a.labels.get("alertname", "?") for a in hits})
        detail = f"{count} firing: {', '.join(names)}" if hits else "no matching alert firing"
        return Sample.of(float(count), detail=detail[:500])

    async def close(self) -> None:
        """Nothing to release: the store belongs to the app."""


def _build(p: Parts) -> AlertmanagerSource:
    return AlertmanagerSource(p.store)


KIND = SourceKind(
    name="alertmanager", rule=AlertmanagerRule, build=_build, unconfigured=always,
    blind=never_blind,  # it reads the watchdog's own store
    replay=None, graph=None, title="Alertmanager",
)  # fmt: skip
