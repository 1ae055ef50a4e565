"""The ``http`` source: a synthetic probe that reads 1 when it fails and 0 when it passes.

A probe fails on an unexpected status, a refused connection or any other transport
error, a timeout, or a JSON field check that does not hold. The failure is the value
(the rule's default threshold is ``> 0``) and the ``detail`` says why; only a rule that
cannot be evaluated at all (bad template value, asked to look back in time) comes
back as ``Sample.failed``. Redirects are never followed: a 3xx is judged by
``expect_status`` like any other status, so a probe cannot be sent to another host.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.foundation.model import Sample
from watchdog.plumbing import httpedge
from watchdog.rulefile.schema import HttpRule
from watchdog.rulefile.template import render, url_escape
from watchdog.sources.base import Parts, SampleContext, SourceKind, always, never_blind
from watchdog.sources.hosts import AllowedHosts

MAX_BODY = 1024 * 1024
_MISSING = object()

Outcome = tuple[bool, str]  # (passed, detail)


class HttpSource:
    """Probes :class:`HttpRule` URLs with one shared httpx client."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        max_body: int = MAX_BODY,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)
        self._max_body = max_body
        self._allowed = AllowedHosts(allowed_hosts)  # for hosts the labels choose

    async def sample(self, rule: HttpRule, ctx: SampleContext) -> Sample:
        """Probe the rule's URL now; value 1.0 when the probe fails, 0.0 when it passes."""
        if not ctx.live:
            return Sample.failed("http probes cannot look back in time", transient=False)
        try:
            url = render(rule.url, ctx.variables, url_escape)
        except PermanentError as exc:
            return Sample.failed(str(exc), transient=False)
        if (refused := self._allowed.refusal(rule.url, url)) is not None:
            return Sample.failed(f"probe: {refused}", transient=False)  # not a failed probe
        try:
            passed, detail = await self._probe(rule, url)
        except httpx.InvalidURL as exc:
            return Sample.failed(f"invalid probe URL: {exc}", transient=False)
        return Sample.of(0.0 if passed else 1.0, detail=detail)

    async def close(self) -> None:
        """Close the client if this source created it."""
        if self._owned:
            await self._client.aclose()

    async def _probe(self, rule: HttpRule, url: str) -> Outcome:
        """One request; transport failures are probe failures, not errors."""
        try:
            answer = await httpedge.fetch(
                self._client, rule.method, url, what="probe", timeout=rule.timeout,
                max_bytes=self._max_body, keep_head=True, headers=rule.headers,
            )  # fmt: skip
        except (TransientError, PermanentError) as exc:
            # "127.0.0.1:8000: connection refused": the port stays, the edge's prefix goes
            return False, str(exc).removeprefix("probe: ").removeprefix(
                "cannot connect to probe at "
            )
        return await self._judge(rule, answer)

    async def _judge(self, rule: HttpRule, answer: httpedge.Answer) -> Outcome:
        code = answer.status
        if not status_ok(code, rule.expect_status):
            return False, f"status {code}, expected {rule.expect_status}"
        if rule.json_field is None:
            return True, f"status {code}"
        if answer.truncated:
            return False, f"response body larger than {self._max_body} bytes"
        try:
            data = await httpedge.parse_json(answer.body)
        except ValueError as exc:
            return False, f"json field {rule.json_field}: response body is {exc}"
        return check_json(data, rule.json_field, rule.json_equals)


def status_ok(code: int, expect: str) -> bool:
    """Whether ``code`` matches a comma list of classes (``2xx``) and exact codes."""
    for token in expect.split(","):
        token = token.strip()
        if token.endswith("xx") and code // 100 == int(token[0]):
            return True
        if token.isdigit() and code == int(token):
            return True
    return False


def check_json(data: Any, path: str, expected: Any) -> Outcome:
    """Check a dotted ``path`` in parsed JSON: truthy when ``expected`` is None, else equal."""
    value = lookup(data, path)
    if value is _MISSING:
        return False, f"json field {path} is missing"
    passed = bool(value) if expected is None else same(value, expected)
    detail = f"json field {path} = {json.dumps(value)}"
    if passed:
        return True, detail
    return False, f"{detail}, expected {json.dumps(True if expected is None else expected)}"


def lookup(data: Any, path: str) -> Any:
    """Follow ``a.b.0.c`` through dicts and lists; ``_MISSING`` when it leads nowhere."""
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def same(value: Any, expected: Any) -> bool:
    """Equality that does not confuse ``true`` with ``1``."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    return bool(value == expected)


def _build(p: Parts) -> HttpSource:
    return HttpSource(p.probe_client, allowed_hosts=p.settings.http_allowed_hosts)


KIND = SourceKind(
    name="http", rule=HttpRule, build=_build,
    unconfigured=always, blind=never_blind,  # a probe's failure is its value
    replay=None, graph=None, title="http",
)  # fmt: skip
