"""One request to Prometheus's HTTP API on the event loop, and what its answer means.

:func:`get` is the only place the ``prometheus`` source touches the network: one GET
through the app's shared httpx client and the common outbound edge
(:func:`watchdog.plumbing.httpedge.fetch`: the body read within ``max_bytes`` after gzip is
undone, a declared ``Content-Length`` over it refused before reading, redirects not
followed, transport failures turned into :class:`~watchdog.foundation.errors.TransientError`).
:func:`decoded` then judges the answer the Prometheus way, not by the edge's generic
classifier: statuses and Prometheus's own ``errorType`` become transient or permanent
errors (a 400 ``bad_data`` is the query rejected), a 200 becomes its ``data.result``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from watchdog.foundation.errors import PermanentError, TransientError, WatchdogError
from watchdog.plumbing import httpedge
from watchdog.sources.promparse import MALFORMED, split_result, too_large

RETRY_STATUS = (502, 503, 504)  # worth another attempt within the time budget
PERMANENT_ERROR_TYPES = frozenset({"bad_data", "execution", "not_found", "not_acceptable"})
WHAT = "Prometheus"  # names the upstream in the edge's messages
BACKOFF_FACTOR = 0.05
BACKOFF_MAX = 0.5
# Answers up to this size are decoded by one json.loads (holding the GIL ~20 ms at most);
# element by element cost 10,000 shared series 60 ms instead of 45 (bench/scale.py).
WHOLE = 1 << 20


def attempt_timeout(budget: float, retries: int) -> float:
    """Per-attempt timeout so that ``retries + 1`` attempts plus backoff fit ``budget``."""
    backoff = sum(backoff_before(n) for n in range(1, retries + 1))
    return max(0.05, (budget - backoff) / (retries + 1))


def backoff_before(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt`` (0 is the first): 0, 0, 0.1, 0.2 … 0.5."""
    return 0.0 if attempt < 2 else min(BACKOFF_MAX, BACKOFF_FACTOR * 2.0 ** (attempt - 1))


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
    auth: httpx.Auth | None = None,
) -> Answer:
    """GET ``url`` (``attempt``: its timeout, seconds); the answer whatever its status.

    Raises TransientError for transport failures ("cannot connect to Prometheus at
    host:port: connection refused"), ResponseTooLarge past ``max_bytes``.
    """
    try:
        answer = await httpedge.fetch(
            client, "GET", url, what=WHAT, timeout=attempt, max_bytes=max_bytes,
            params=params, headers=headers, auth=auth,
        )  # fmt: skip
    except httpedge.TooLarge as exc:
        raise too_large(max_bytes, exc.declared) from None
    return Answer(answer.status, answer.body)


def decoded(answer: Answer) -> Any:
    """The ``data.result`` of a successful answer; raises the error any other stands for.

    A large 200 answer (over :data:`WHOLE`) is decoded one result element at a time
    (:func:`~watchdog.sources.promparse.split_result`), so that the worker thread doing
    it lets the event loop run.
    """
    if answer.status == 200 and len(answer.body) > WHOLE:
        split = split_result(answer.body)
        if split is not None and split[0].get("status") != "error":
            return split[1]
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
    text = httpedge.scrubbed(str(body.get("error") or "")[:300])
    message = f"Prometheus answered HTTP {code}" + (f" {kind}" if kind else "")
    message += f": {text}" if text else ""
    if code in (408, 429) or code >= 500:
        return TransientError(message)
    if code == 200:
        transient = kind not in PERMANENT_ERROR_TYPES
        return TransientError(message) if transient else PermanentError(message)
    return PermanentError(message)


def json_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``, or an empty dict when it is not one (or too deep)."""
    try:
        body = httpedge.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
