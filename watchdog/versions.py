"""Which version a service is serving: a JSON field of an HTTP endpoint (``/health``,
``/version``) or a label of a Prometheus info metric (``build_info{version="…"}``).

Used by deploy auto-detection (``detect.py``) and by the post-rollback ``verify`` step.
A version read is one bounded request; every failure is a :class:`WatchdogError` whose
message says what went wrong, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchdog.durations import Duration
from watchdog.errors import PermanentError, TransientError
from watchdog.rulefile.template import SAFE_VALUE, promql_escape, render, url_escape
from watchdog.sources.http import lookup, read_limited

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
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._prometheus = prometheus_url.rstrip("/")
        self._token = prometheus_token
        self._timeout = timeout

    async def read(self, probe: VersionProbe, variables: Mapping[str, str]) -> str:
        """The version the probe sees now."""
        try:
            if probe.url is not None:
                return await self._from_json(probe, render(probe.url, variables, url_escape))
            assert probe.query is not None
            return await self._from_prometheus(probe, render(probe.query, variables, promql_escape))
        except httpx.TimeoutException:
            raise TransientError(f"{probe.describe()}: timed out") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"{probe.describe()}: {type(exc).__name__}: {exc}") from None

    async def _from_json(self, probe: VersionProbe, url: str) -> str:
        async with self._client.stream(
            "GET", url, timeout=self._timeout, follow_redirects=False
        ) as response:
            _check_status(response, url)
            body = await read_limited(response, MAX_BODY)
        if body is None:
            raise PermanentError(f"{url}: body larger than {MAX_BODY} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise PermanentError(f"{url}: response is not JSON") from None
        value = lookup(data, probe.json_field)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise PermanentError(f"{url}: no string field {probe.json_field!r}")

    async def _from_prometheus(self, probe: VersionProbe, query: str) -> str:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        response = await self._client.get(
            f"{self._prometheus}/api/v1/query",
            params={"query": query},
            headers=headers,
            timeout=self._timeout,
        )
        _check_status(response, f"{self._prometheus}/api/v1/query")
        result = response.json().get("data", {}).get("result", [])
        versions = sorted(
            {e["metric"][probe.label] for e in result if probe.label in e.get("metric", {})}
        )
        if len(versions) == 1:
            return str(versions[0])
        if not versions:
            raise TransientError(f"{query}: no series with label {probe.label!r}")
        # Two versions at once: a rolling deploy in progress; not settled yet.
        raise TransientError(f"{query}: several versions serving: {', '.join(versions)}")


def _check_status(response: httpx.Response, url: str) -> None:
    code = response.status_code
    if code == 429 or code >= 500:
        raise TransientError(f"{url} returned {code}")
    if code >= 300:
        raise PermanentError(f"{url} returned {code}")


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
