"""The ``http`` step: call an operator-allowed endpoint (a deploy API, a CI trigger).

Safety rules, in the order they are applied:

1. Every templated value is checked against the safe pattern (``render`` does this) and
   URL-escaped in the URL, so a deployment label cannot add a path, a query or a host.
2. The rendered URL's host must be in ``http_allowed_hosts`` *before* any byte is sent.
3. Redirects are never followed (:mod:`watchdog.plumbing.httpedge`): a 3xx is just an unexpected
   status, so an allowed host cannot bounce the request (and its headers) elsewhere.

Every request carries ``Idempotency-Key: <window id>:<step name>``. The plan runner
retries transient failures, and a request that timed out may still have been applied,
so the receiver can see the same call twice; the key is stable across retries and
restarts of the same window's plan, letting receivers that support it dedupe.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from watchdog.actions.base import ActionContext, StepKind, StepResult
from watchdog.actions.spec import HttpStep
from watchdog.foundation.clock import Clock, SystemClock
from watchdog.foundation.errors import PermanentError, TransientError
from watchdog.plumbing import httpedge
from watchdog.rulefile.template import render, url_escape

OUTPUT_LIMIT = 2048
"""Bytes of the response body kept as the step's output."""

EXCERPT_LIMIT = 300
"""Characters of the response body quoted in an error."""

_STATUS_ITEM = re.compile(r"^(?:[1-5]xx|[1-5]\d\d)$")


def _identity(value: str) -> str:
    return value


class HttpExecutor:
    """Runs :class:`~watchdog.actions.spec.HttpStep` with a shared ``httpx.AsyncClient``.

    ``allowed_hosts`` holds ``host`` (any port) or ``host:port`` entries, matched
    exactly and case-insensitively. ``clock`` is only used to turn an HTTP-date
    ``Retry-After`` into seconds when the response carries no ``Date`` header.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        allowed_hosts: Collection[str],
        *,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._allowed = frozenset(h.strip().lower() for h in allowed_hosts)
        self._clock: Clock = clock or SystemClock()

    async def run(self, step: HttpStep, ctx: ActionContext) -> StepResult:
        """Send the request once; classify the answer (see the module docstring)."""
        expected = parse_expect(step.expect_status)
        url = httpx.URL(render(step.url, ctx.variables, url_escape))
        self._check_host(url)
        headers = httpx.Headers(
            {k: render(v, ctx.variables, _identity) for k, v in step.headers.items()}
        )
        headers.setdefault("Idempotency-Key", f"{ctx.window.id}:{step.name}")
        body = render_json(step.json_body, ctx.variables)
        answer = await self._send(step, url, headers, body)
        return self._judge(step, url, answer, expected)

    def _check_host(self, url: httpx.URL) -> None:
        host = url.host.lower()
        port = url.port or (443 if url.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        if host in self._allowed or f"{shown}:{port}" in self._allowed:
            return
        raise PermanentError(f"host {shown}:{port} is not in http_allowed_hosts")

    async def _send(
        self, step: HttpStep, url: httpx.URL, headers: httpx.Headers, body: Any
    ) -> httpedge.Answer:
        return await httpedge.fetch(
            self._client, step.method, url, what=f"{step.method} {httpedge.safe_url(url)}",
            timeout=step.timeout, max_bytes=OUTPUT_LIMIT, keep_head=True, headers=headers,
            json_body=body if step.json_body is not None else None,
        )  # fmt: skip

    def _judge(
        self, step: HttpStep, url: httpx.URL, answer: httpedge.Answer, expected: list[str]
    ) -> StepResult:
        code = answer.status
        if status_matches(code, expected):
            return StepResult(output=answer.text(), data={"status": code})
        message = f"{step.method} {httpedge.safe_url(url)} returned {code}: {_excerpt(answer)}"
        if httpedge.classify(code) == "transient":
            raise TransientError(
                message, retry_after=httpedge.retry_after(answer, self._clock.now())
            )
        raise PermanentError(message)


def parse_expect(spec: str) -> list[str]:
    """Split ``"2xx"`` / ``"200,202"`` into items; a malformed spec is permanent."""
    items = [item.strip().lower() for item in spec.split(",") if item.strip()]
    if not items or not all(_STATUS_ITEM.match(item) for item in items):
        raise PermanentError(f"expect_status {spec!r} is not like '2xx' or '200,202'")
    return items


def status_matches(code: int, expected: list[str]) -> bool:
    """True when ``code`` is one of the items (``2xx`` matches 200-299)."""
    text = str(code)
    return any(item == text or (item.endswith("xx") and item[0] == text[0]) for item in expected)


def render_json(value: Any, variables: Mapping[str, str]) -> Any:
    """Render every string (keys included) inside a JSON value, recursively."""
    if isinstance(value, str):
        return render(value, variables, _identity)
    if isinstance(value, Mapping):
        return {render_json(k, variables): render_json(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_json(v, variables) for v in value]
    return value


def _excerpt(answer: httpedge.Answer) -> str:
    return answer.excerpt(EXCERPT_LIMIT) or "(empty body)"


KIND = StepKind(
    "http", HttpStep, lambda p: HttpExecutor(p.client, p.settings.http_allowed_hosts, clock=p.clock)
)
