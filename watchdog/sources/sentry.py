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

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Sample
from watchdog.plumbing import httpedge
from watchdog.rulefile.telemetry import SentryRule
from watchdog.rulefile.template import render
from watchdog.sources.base import Parts, SampleContext, SourceKind, needs

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
            answer = await httpedge.fetch(
                self._client, "GET", url, what="Sentry", timeout=self._timeout,
                max_bytes=MAX_BYTES, params=params, headers=self._headers,
            )  # fmt: skip
        except (TransientError, PermanentError) as exc:
            raise _Failed(str(exc), transient=exc.transient) from None
        if answer.status != 200:
            transient = httpedge.classify(answer.status) == "transient"
            detail = _detail_of(answer.body)
            raise _Failed(f"Sentry answered HTTP {answer.status}{detail}", transient=transient)
        try:
            body = await httpedge.parse_json(answer.body)
        except ValueError as exc:
            raise _Failed(f"malformed response from Sentry ({exc})") from None
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


def _detail_of(head: bytes) -> str:
    """Sentry's ``{"detail": …}`` from an error answer's head (scrubbed: it is shown)."""
    try:
        body = httpedge.loads(head)
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {httpedge.scrubbed(str(detail)[:200])}" if detail else ""


def _build(p: Parts) -> SentrySource | None:
    s = p.settings
    if not (s.sentry_org and s.sentry_token):
        return None
    token = s.sentry_token.get_secret_value()
    return SentrySource(
        s.sentry_url, s.sentry_org, token, timeout=s.sentry_timeout, client=p.client
    )


KIND = SourceKind(
    name="sentry", rule=SentryRule, build=_build,
    unconfigured=lambda rule, s: needs(
        rule, bool(s.sentry_org and s.sentry_token),
        "WATCHDOG_SENTRY_ORG and WATCHDOG_SENTRY_TOKEN",
    ),
    blind=lambda rule: "Sentry", replay=None, graph=None, title="Sentry",
)  # fmt: skip
