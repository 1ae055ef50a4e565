"""The ``prometheus`` source the old way: prometheus-api-client in a thread pool.

The service queries on the event loop (:mod:`watchdog.sources.prometheus`); this one is
kept where a synchronous client fits: ``watchdog replay``'s range queries, and
``bench/scale.py``'s side-by-side run of both paths. prometheus-api-client is
synchronous, so every call runs in a small thread pool (its size bounds the concurrent
queries) and is awaited under ``asyncio.wait_for``: a slow Prometheus costs a tick at
most ``timeout`` seconds, whatever the thread then does. The urllib3 retry budget is
sized so that all attempts fit in ``timeout`` too.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from watchdog.foundation.errors import PermanentError, TransientError, WatchdogError
from watchdog.foundation.model import Sample
from watchdog.plumbing import httpedge
from watchdog.sources.prometheus import PrometheusSampling
from watchdog.sources.promhttp import (
    BACKOFF_FACTOR,
    BACKOFF_MAX,
    RETRY_STATUS,
    api_error,
    attempt_timeout,
    json_body,
)
from watchdog.sources.promparse import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SERIES,
    MALFORMED,
    RangeSeries,
    cap_response,
    parse_instant,
    parse_range,
    too_many_series,
)
from watchdog.sources.scrape_interval import ScrapeIntervals
from watchdog.sources.shared import SharedAnswers

_STATUS_IN_MESSAGE = re.compile(r"HTTP Status Code (\d{3})")


class ThreadedPrometheusSource(PrometheusSampling):
    """Samples :class:`PrometheusRule` queries through prometheus-api-client in threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retries: int,
        concurrency: int,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        grid: float = 15.0,
        max_series: int = DEFAULT_MAX_SERIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if timeout <= 0 or retries < 0 or concurrency < 1 or grid <= 0:
            raise ValueError("timeout and grid must be > 0, retries >= 0, concurrency >= 1")
        self._url = url.rstrip("/")
        self._host = where(self._url)
        self._timeout = timeout
        self._attempt = attempt_timeout(timeout, retries)
        self._token = token
        self._max_series = max_series
        self._max_bytes = max_bytes
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._local = threading.local()  # the last HTTP response seen by each worker
        retry = Retry(
            total=retries,
            backoff_factor=BACKOFF_FACTOR,
            backoff_max=BACKOFF_MAX,
            status_forcelist=RETRY_STATUS,
            allowed_methods=None,  # retry GET and POST alike: queries are read-only
            raise_on_status=False,  # hand back the last 5xx instead of a RetryError
            respect_retry_after_header=False,  # a Retry-After must not blow the budget
        )
        self._session = requests.Session()
        if basic is not None:
            self._session.auth = basic  # basic auth from settings, never user:key@ in the URL
        self._session.hooks["response"].append(self._remember)
        connect: Any = PrometheusConnect  # its annotations say int where floats work
        self._client = connect(
            url=self._url,
            headers=self._headers,
            retry=retry,
            session=self._session,
            timeout=self._attempt,
        )
        # Replace the adapter it mounted: same retry, but a pool as large as ours.
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=concurrency)
        self._session.mount(self._url, adapter)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="prometheus")
        self._shared = SharedAnswers()
        # The grid ranges round up to: Prometheus' own scrape intervals, `grid` until
        # it answers (watchdog/sources/scrape_interval.py).
        self.intervals = ScrapeIntervals(self._targets, fallback=grid)

    async def _instant(self, query: str, at: float) -> Sample:
        params = {"time": repr(at), "timeout": f"{self._attempt:.3f}"}
        try:
            sample: Sample = await self._call(self._query_instant, query, params)
        except WatchdogError as exc:
            return Sample.failed(self._scrub(str(exc)), transient=exc.transient)
        return sample

    def _query_instant(self, query: str, params: dict[str, str]) -> Sample:
        """In a worker thread: query, then count and build the series off the event loop."""
        result = self._client.custom_query(query, params=params)
        return parse_instant(result, self._max_series)

    async def query_range(
        self, query: str, start: float, end: float, step: float
    ) -> list[RangeSeries]:
        """Evaluate ``query`` over ``[start, end]``; raises Transient/PermanentError."""
        params = {  # override the client's whole-second rounding of start and end
            "start": repr(start),
            "end": repr(end),
            "timeout": f"{self._attempt:.3f}",
        }
        result = await self._call(
            self._client.custom_query_range,
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=repr(step),
            params=params,
        )
        if (too_many := too_many_series(result, self._max_series)) is not None:
            raise PermanentError(too_many)
        try:
            return parse_range(result)
        except (KeyError, TypeError, ValueError, IndexError):
            raise TransientError(MALFORMED) from None

    async def _targets(self) -> Any:
        """``GET /api/v1/targets?state=active``, decoded (raises WatchdogError)."""
        get = partial(
            self._session.get,
            f"{self._url}/api/v1/targets",
            params={"state": "active"},
            headers=self._headers,
            timeout=self._attempt,
        )
        response = await self._call(get)
        if response.status_code != 200:
            raise TransientError(f"Prometheus answered HTTP {response.status_code} for targets")
        try:
            return json.loads(response.content)
        except ValueError:
            raise TransientError(MALFORMED) from None

    async def ready(self) -> bool:
        """True when Prometheus answers ``GET /-/ready`` with 200."""
        get = partial(self._session.get, headers=self._headers, timeout=self._attempt)
        try:
            response = await self._call(get, f"{self._url}/-/ready")
        except WatchdogError:
            return False
        return bool(response.status_code == 200)

    async def close(self) -> None:
        """Stop the worker threads and close the HTTP session."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the pool under the hard time budget; errors become WatchdogError."""
        loop = asyncio.get_running_loop()
        try:
            job = loop.run_in_executor(self._pool, partial(self._guarded, fn, *args, **kwargs))
            return await asyncio.wait_for(job, self._timeout)
        except TimeoutError:
            raise TransientError(f"Prometheus did not answer within {self._timeout:g}s") from None
        except RuntimeError as exc:  # the pool was shut down
            raise TransientError(f"Prometheus source is closed: {exc}") from None

    def _guarded(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """In a worker thread: call ``fn`` and classify what goes wrong."""
        self._local.response = None
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = classify(exc, self._local.response, self._host, self._attempt)
            raise error from None

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """requests response hook: keep the final response for error messages, cap its body."""
        self._local.response = response
        cap_response(response, self._max_bytes)

    def _scrub(self, text: str) -> str:
        """Never let a token, password or URL credential reach a message."""
        text = text.replace(self._token, "***") if self._token else text
        return httpedge.scrubbed(text)


def classify(
    exc: Exception, response: requests.Response | None, host: str, attempt: float
) -> WatchdogError:
    """Map an exception from prometheus-api-client or requests to Transient/Permanent."""
    if isinstance(exc, WatchdogError):
        return exc
    if isinstance(exc, PrometheusApiClientException):
        return _http_error(exc, response)
    if isinstance(exc, KeyError | TypeError | ValueError | IndexError):
        # A 200 whose body is not the success envelope (JSONDecodeError is a ValueError).
        body = _json_body(response)
        if body.get("status") == "error":
            return api_error(200, body)
        return TransientError(MALFORMED)
    if isinstance(exc, requests.Timeout):
        return TransientError(f"Prometheus at {host} timed out after {attempt:g}s")
    if isinstance(exc, requests.ConnectionError):
        return TransientError(_connection_problem(exc, host, attempt))
    if isinstance(exc, requests.RequestException):
        return TransientError(f"request to Prometheus at {host} failed: {type(exc).__name__}")
    return TransientError(f"unexpected error querying Prometheus: {type(exc).__name__}: {exc}")


def _connection_problem(exc: requests.ConnectionError, host: str, attempt: float) -> str:
    # After retries requests wraps even read timeouts in ConnectionError(MaxRetryError).
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    if isinstance(reason, ReadTimeoutError):
        return f"Prometheus at {host} timed out after {attempt:g}s"
    if isinstance(reason, NewConnectionError) and "refused" in str(reason).lower():
        return f"cannot connect to Prometheus at {host}: connection refused"
    return f"cannot connect to Prometheus at {host}"


def _http_error(
    exc: PrometheusApiClientException, response: requests.Response | None
) -> WatchdogError:
    if response is not None:
        code = response.status_code
    else:
        match = _STATUS_IN_MESSAGE.search(str(exc))
        code = int(match.group(1)) if match else 0
    return api_error(code, _json_body(response))


def _json_body(response: requests.Response | None) -> dict[str, Any]:
    return {} if response is None else json_body(response.content)


def where(url: str) -> str:
    """``host:port`` of ``url`` for messages (no credentials; the port kept, as people
    need it to see which server was unreachable)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.hostname:
        return url
    return parts.hostname if port is None else f"{parts.hostname}:{port}"
