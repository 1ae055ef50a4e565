"""Which version a service is serving: a JSON field of an HTTP endpoint (``/health``,
``/version``) or a label of a Prometheus info metric (``build_info{version="…"}``).

Used by deploy auto-detection (``lifecycle/detect.py``) and by the post-rollback ``verify`` step.
A version read is one bounded request; every failure is a :class:`WatchdogError` whose
message says what went wrong, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchdog.foundation.durations import Duration
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.plumbing import httpedge
from watchdog.rulefile.template import SAFE_VALUE, promql_escape, render, url_escape
from watchdog.sources.http import lookup

MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class VersionProbe:
    """Where a version is read: exactly one of ``url`` and ``query`` is set."""

    url: str | None = None
    json_field: str = "version"
    query: str | None = None
    label: str = "version"

    def describe(self) -> str:
        """``GET URL .field`` or ``QUERY label``, for messages."""
        if self.url is not None:
            return f"{self.url} field {self.json_field}"
        return f"{self.query} label {self.label}"


class VersionReader:
    """Reads versions with a shared httpx client; Prometheus through its HTTP API."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        prometheus_url: str,
        *,
        prometheus_token: str | None = None,
        prometheus_basic: tuple[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._prometheus = prometheus_url.rstrip("/")
        self._token = prometheus_token
        self._auth = httpx.BasicAuth(*prometheus_basic) if prometheus_basic else None
        self._timeout = timeout

    async def read(self, probe: VersionProbe, variables: Mapping[str, str]) -> str:
        """The version the probe sees now."""
        if probe.url is not None:
            return await self._from_json(probe, render(probe.url, variables, url_escape))
        assert probe.query is not None
        return await self._from_prometheus(probe, render(probe.query, variables, promql_escape))

    async def _from_json(self, probe: VersionProbe, url: str) -> str:
        what = httpedge.safe_url(url)
        answer = await httpedge.fetch(
            self._client, "GET", url, what=what, timeout=self._timeout, max_bytes=MAX_BODY
        )
        httpedge.judge(answer, what)
        try:
            data = await httpedge.parse_json(answer.body)
        except ValueError as exc:
            raise PermanentError(f"{what}: response is {exc}") from None
        value = lookup(data, probe.json_field)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise PermanentError(f"{what}: no string field {probe.json_field!r}")

    async def _from_prometheus(self, probe: VersionProbe, query: str) -> str:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        what = f"{httpedge.safe_url(self._prometheus)}/api/v1/query"
        answer = await httpedge.fetch(
            self._client, "GET", f"{self._prometheus}/api/v1/query", what=what,
            timeout=self._timeout, max_bytes=MAX_BODY, params={"query": query}, headers=headers,
            auth=self._auth,
        )  # fmt: skip
        httpedge.judge(answer, what)
        try:
            body = await httpedge.parse_json(answer.body)
            result = body.get("data", {}).get("result", [])
            versions = sorted(
                {e["metric"][probe.label] for e in result if probe.label in e.get("metric", {})}
            )
        except (ValueError, AttributeError, TypeError, KeyError):
            raise TransientError(f"{what}: malformed answer") from None
        if len(versions) == 1:
            return str(versions[0])
        if not versions:
            raise TransientError(f"{query}: no series with label {probe.label!r}")
        # Two versions at once: a rolling deploy in progress; not settled yet.
        raise TransientError(f"{query}: several versions serving: {', '.join(versions)}")


class WatchedService(BaseModel):
    """A service whose deploys open windows by themselves (``detect:`` in settings).

    Exactly one of ``url`` (with ``json_field``) and ``query`` (with ``label``) says
    where the serving version is read; ``url`` and ``query`` may use ``{{ service }}``
    and ``{{ environment }}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(pattern=f"^{SAFE_VALUE.pattern}$")
    environment: str = Field("production", pattern=f"^{SAFE_VALUE.pattern}$")
    url: str | None = Field(None, pattern=r"^https?://")
    json_field: str = "version"
    query: str | None = None
    label: str = "version"
    interval: Duration = 15.0
    plan: str | None = None
    window: Duration | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> WatchedService:
        if (self.url is None) == (self.query is None):
            raise ValueError(f"detect {self.service}: give exactly one of url or query")
        return self

    @property
    def probe(self) -> VersionProbe:
        """Where the version is read."""
        return VersionProbe(self.url, self.json_field, self.query, self.label)

    def variables(self) -> dict[str, str]:
        """What ``url`` / ``query`` templates may use."""
        return {"service": self.service, "environment": self.environment}
