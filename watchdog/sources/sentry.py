"""The ``sentry`` source: new issues first seen in the deployed release.

Asks Sentry's issues API (``GET /api/0/projects/{org}/{project}/issues/``) for the
project's issues whose ``firstRelease`` is the deployed version, in the window's
environment, and counts those first seen since the window opened. An issue first
seen under an earlier release is not the new version's doing and is never counted,
whatever it does now. API errors (refused, timeout, 401, 5xx) are failed samples:
inconclusive by default, never a rollback. One page of at most ``PAGE`` issues is read:
a count that reaches it says "at least".
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from watchdog.errors import PermanentError
from watchdog.model import Sample
from watchdog.rulefile.telemetry import SentryRule
from watchdog.rulefile.template import render
from watchdog.sources.base import SampleContext

PAGE = 100
MAX_BYTES = 4 << 20


class SentrySource:
    """Counts new issues of the deployed release for :class:`SentryRule` rules."""

    def __init__(
        self,
        url: str,
        org: str,
        token: str,
        *,
        timeout: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._api = f"{url.rstrip('/')}/api/0/projects/{quote(org, safe='')}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._owned = client is None
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def sample(self, rule: SentryRule, ctx: SampleContext) -> Sample:
        """Count the release's issues first seen since the window opened; never raises."""
        if not ctx.live:
            return Sample.failed("sentry issues are counted now; replay cannot ask the past",
                                 transient=False)  # fmt: skip
        try:
            release = render(rule.release, ctx.variables, _search_quote)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        params = {"query": _query(rule, release), "statsPeriod": "", "limit": str(PAGE)}
        if env := ctx.variables.get("environment"):
            params["environment"] = env
        try:
            issues = await self._issues(rule.project, params)
        except _Failed as exc:
            return Sample.failed(str(exc), transient=exc.transient)
        new = [i for i in issues if _first_seen(i) >= (ctx.since or 0.0)]
        return Sample.of(float(len(new)), detail=_detail(new, len(issues) >= PAGE))

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _issues(self, project: str, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self._api}/{quote(project, safe='')}/issues/"
        try:
            async with asyncio.timeout(self._timeout):
                resp = await self._client.get(url, params=params, headers=self._headers)
        except TimeoutError:
            raise _Failed(f"Sentry did not answer within {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise _Failed(f"cannot reach Sentry: {type(exc).__name__}") from None
        if resp.status_code != 200:
            detail = _detail_of(resp.content)
            transient = resp.status_code in (408, 429) or resp.status_code >= 500
            raise _Failed(f"Sentry answered HTTP {resp.status_code}{detail}", transient=transient)
        if len(resp.content) > MAX_BYTES:
            raise _Failed(f"Sentry's answer exceeds {MAX_BYTES} bytes", transient=False)
        try:
            body = json.loads(resp.content)
        except ValueError:
            raise _Failed("malformed response from Sentry") from None
        if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
            raise _Failed("malformed response from Sentry")
        return body


class _Failed(Exception):
    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


def _query(rule: SentryRule, release: str) -> str:
    query = f"{rule.query} firstRelease:{release}".strip()
    return f"{query} level:{rule.level}" if rule.level else query


def _search_quote(value: str) -> str:
    """A value inside Sentry's search syntax: always a quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _first_seen(issue: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(issue["firstSeen"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError):
        return float("inf")  # unknown: count it rather than miss a new error


def _detail(new: list[dict[str, Any]], capped: bool) -> str:
    names = ", ".join(
        f"{str(i.get('shortId') or i.get('id'))[:40]}: {str(i.get('title'))[:80]}" for i in new[:3]
    )
    more = " (at least: one page read)" if capped else ""
    return f"{len(new)} new issue(s){more}" + (f": {names}" if names else "")


def _detail_of(content: bytes) -> str:
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {str(detail)[:200]}" if detail else ""
