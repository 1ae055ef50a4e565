"""The ``pushgateway`` source: what a batch job pushed since the window opened.

Compose and VM setups run their cron-style jobs (imports, reports, backfills) as
short-lived containers that push their results to a Prometheus Pushgateway
(``PUT /metrics/job/<job>/<label>/<value>``). After a deploy, the new version's runs
are what judge it. This source reads the Pushgateway's JSON API, ``GET /api/v1/metrics``
(``{"status": "success", "data": [group, …]}``; a group holds its grouping ``labels``,
``push_time_seconds`` (the last successful push, epoch seconds as a string) and each
metric family last pushed: ``{"metrics": [{"labels": {…}, "value": "3"}]}``), keeps the
groups of the rule's ``job`` (and ``grouping`` labels) pushed since the window opened,
and judges each series of ``metric`` in them (``match``: label equality) on its own.

A push from before the window belongs to the previous version and is never read: no
push since is no data ("no data is never a breach"). The Pushgateway unreachable or
answering 5xx is a failed sample blamed on it ("watchdog blind"); an answer that is not
the Pushgateway's, or a histogram ``metric``, is the rule's error.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from watchdog.foundation.durations import Duration
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Sample, Series
from watchdog.plumbing import httpedge
from watchdog.rulefile.schema import RuleBase, _check_query_vars
from watchdog.rulefile.template import render, url_escape
from watchdog.rulefile.threshold import Threshold, parse_threshold
from watchdog.sources.base import SampleContext, SourceKind, always

LABEL = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"
PUSHED = "push_time_seconds"


class PushgatewayRule(RuleBase):
    """A metric a batch job pushed to a Pushgateway since the window opened; default
    threshold ``> 0`` (e.g. rows an import rejected)."""

    source: Literal["pushgateway"]
    url: str = Field(pattern=r"^https?://", max_length=2048)  # the Pushgateway itself
    job: str = Field(min_length=1, max_length=200)  # the group's `job` label
    grouping: dict[str, str] = Field(default_factory=dict, max_length=16)  # other group labels
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
    match: dict[str, str] = Field(default_factory=dict, max_length=16)  # series labels
    timeout: Duration = Field(5.0, gt=0, le=60)
    max_bytes: int = Field(8 << 20, ge=1024, le=64 << 20)
    threshold: Threshold = Field(default_factory=lambda: parse_threshold("> 0"))

    @field_validator("url", "job")
    @classmethod
    def _vars(cls, value: str) -> str:
        return _check_query_vars(value)

    @field_validator("grouping", "match")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.fullmatch(LABEL, name)]
        if bad:
            raise ValueError(f"invalid label name {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _no_baseline(self) -> PushgatewayRule:
        if self.baseline is not None:
            raise ValueError("pushgateway keeps only the last push: 'baseline' is not allowed")
        return self


class PushgatewaySource:
    """Reads :class:`PushgatewayRule` groups with one shared httpx client."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)

    async def sample(self, rule: PushgatewayRule, ctx: SampleContext) -> Sample:
        """Read the groups now; judge the series pushed since the window opened."""
        if not ctx.live:
            return Sample.failed("pushgateway keeps only the last push; it cannot look back",
                                 transient=False)  # fmt: skip
        try:
            url = render(rule.url, ctx.variables, url_escape).rstrip("/") + "/api/v1/metrics"
            job = render(rule.job, ctx.variables, str)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        try:
            return _judge(rule, job, await self._groups(url, rule), ctx.since)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        except TransientError as exc:  # blamed on the Pushgateway as rendered (host:port)
            return Sample.failed(str(exc), unreachable=f"Pushgateway {_host(url)}")

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _groups(self, url: str, rule: PushgatewayRule) -> list[Any]:
        what = f"Pushgateway {_host(url)}"
        try:
            answer = await httpedge.fetch(
                self._client, "GET", url, what=what, timeout=rule.timeout,
                max_bytes=rule.max_bytes, headers={"Accept": "application/json"},
            )  # fmt: skip
        except httpx.InvalidURL as exc:
            raise PermanentError(f"invalid Pushgateway URL: {exc}") from None
        httpedge.judge(answer, what)
        try:
            body = await httpedge.parse_json(answer.body)
        except httpedge.BadJson as exc:
            raise PermanentError(f"{what} answered no JSON: {exc}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise PermanentError(f"{what} answered something else than /api/v1/metrics")
        data = body.get("data")
        return data if isinstance(data, list) else []


def _judge(rule: PushgatewayRule, job: str, groups: list[Any], since: float | None) -> Sample:
    wanted = {**rule.grouping, "job": job}
    ours = [g for g in groups if isinstance(g, dict) and _has(g.get("labels"), wanted)]
    fresh = [g for g in ours if since is None or _pushed(g) >= since]
    if not fresh:
        said = "since the window opened" if ours else "ever"
        return Sample.no_data(f"no push from job {job!r} {said}")
    series = [s for g in fresh for s in _series(g, rule)]
    if not series:
        return Sample.no_data(f"job {job!r} pushed no {rule.metric} matching the rule")
    return Sample.of(*series, detail=f"{len(fresh)} group(s) pushed since the window opened")


def _series(group: dict[str, Any], rule: PushgatewayRule) -> list[Series]:
    family = group.get(rule.metric)
    if not isinstance(family, dict):
        return []
    metrics = family.get("metrics")
    out = []
    for m in metrics if isinstance(metrics, list) else []:
        labels = m.get("labels") if isinstance(m, dict) else None
        if not isinstance(labels, dict) or not _has(labels, rule.match):
            continue
        if "value" not in m:  # a histogram or summary: buckets and quantiles, no one value
            raise PermanentError(f"{rule.metric} is a {family.get('type', '?')}: push a gauge")
        out.append(Series(_number(m["value"]), {str(k): str(v) for k, v in labels.items()}))
    return out


def _has(labels: Any, wanted: dict[str, str]) -> bool:
    return isinstance(labels, dict) and all(labels.get(k) == v for k, v in wanted.items())


def _pushed(group: dict[str, Any]) -> float:
    """The group's last successful push (0: none, as the Pushgateway itself says)."""
    family = group.get(PUSHED)
    metrics = family.get("metrics") if isinstance(family, dict) else None
    if not isinstance(metrics, list) or not metrics or not isinstance(metrics[0], dict):
        return 0.0
    try:
        return _number(metrics[0].get("value"))
    except PermanentError:
        return 0.0


def _number(value: Any) -> float:
    try:
        return float(value)  # the JSON API writes numbers as strings ("NaN", "+Inf" too)
    except (TypeError, ValueError):
        raise PermanentError(f"not a number in the Pushgateway's answer: {value!r}") from None


def _host(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "(invalid URL)"
    return parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"


KIND = SourceKind(
    name="pushgateway", rule=PushgatewayRule, build=lambda p: PushgatewaySource(p.probe_client),
    unconfigured=always, blind=lambda rule: f"Pushgateway {_host(rule.url)}",
    replay=None, graph=None, title="Pushgateway",
)  # fmt: skip
