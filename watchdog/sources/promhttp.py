"""One request to Prometheus's HTTP API on the event loop, and what its answer means.

:func:`get` is the only place the ``prometheus`` source touches the network: one GET
through the app's shared httpx client, the body read within ``max_bytes`` (counted
after gzip is undone, a declared ``Content-Length`` over it refused before reading),
transport failures turned into :class:`~watchdog.errors.TransientError`. It is small
on purpose, so that it can be routed through a common outbound-HTTP edge later.
:func:`decoded` then judges the answer: statuses and Prometheus's own ``errorType``
become transient or permanent errors, a 200 becomes its ``data.result``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from watchdog.errors import PermanentError, TransientError, WatchdogError
from watchdog.sources.http import connect_problem, read_limited
from watchdog.sources.promparse import MALFORMED, too_large

RETRY_STATUS = (502, 503, 504)  # worth another attempt within the time budget
PERMANENT_ERROR_TYPES = frozenset({"bad_data", "execution", "not_found", "not_acceptable"})


@dataclass(frozen=True)
class Answer:
    """A whole (bounded) HTTP answer."""

    status: int
    body: bytes


async def get(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: dict[str, str],
    headers: dict[str, str],
    attempt: float,
    max_bytes: int,
) -> Answer:
    """GET ``url`` (``attempt``: its timeout, seconds); the answer whatever its status.

    Raises TransientError for transport failures, ResponseTooLarge past ``max_bytes``.
    """
    try:
        async with client.stream(
            "GET", url, params=params, headers=headers, timeout=attempt, follow_redirects=False
        ) as response:
            declared = response.headers.get("Content-Length", "")
            # A compressed body over the cap decompresses to more still.
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_large(max_bytes, int(declared))
            body = await read_limited(response, max_bytes)
            if body is None:
                raise too_large(max_bytes)
            return Answer(response.status_code, body)
    except httpx.HTTPError as exc:
        raise transport_error(exc, httpx.URL(url).host, attempt) from None


def transport_error(exc: httpx.HTTPError, host: str, attempt: float) -> TransientError:
    """What a failed request says: timed out, refused, or which error it was."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"Prometheus at {host} timed out after {attempt:g}s")
    if isinstance(exc, httpx.ConnectError):
        refused = connect_problem(exc) == "connection refused"
        why = ": connection refused" if refused else ""
        return TransientError(f"cannot connect to Prometheus at {host}{why}")
    return TransientError(f"request to Prometheus at {host} failed: {type(exc).__name__}")


def decoded(answer: Answer) -> Any:
    """The ``data.result`` of a successful answer; raises the error any other stands for."""
    body = json_body(answer.body)
    if answer.status != 200 or body.get("status") == "error":
        raise api_error(answer.status, body)
    try:
        return body["data"]["result"]
    except (KeyError, TypeError):
        raise TransientError(MALFORMED) from None


def api_error(code: int, body: dict[str, Any]) -> WatchdogError:
    """The error an HTTP status (and Prometheus's error envelope) stands for.

    Overload and server trouble (408, 429, 5xx) may pass; any other 4xx means the query
    itself was rejected. A ``status: error`` inside a 200 is judged by its error type.
    """
    kind = str(body.get("errorType") or "")
    text = str(body.get("error") or "")[:300]
    message = f"Prometheus answered HTTP {code}" + (f" {kind}" if kind else "")
    message += f": {text}" if text else ""
    if code in (408, 429) or code >= 500:
        return TransientError(message)
    if code == 200:
        transient = kind not in PERMANENT_ERROR_TYPES
        return TransientError(message) if transient else PermanentError(message)
    return PermanentError(message)


def json_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, or an empty dict when it is not one."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
