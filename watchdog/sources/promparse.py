"""Reading Prometheus answers, within bounds: the body's size and the series in one answer.

A query matching 200,000 series answered ~30 MB of JSON; building the samples blocked
the event loop ~9 s per evaluation (RSS 732 MB). Two caps stop that before it costs:

* the body, counted as it is read (after gzip is undone): past ``max_bytes`` the read
  stops and the connection is dropped (:func:`watchdog.sources.promhttp.get` on the
  event loop; :class:`CappedBody` for the thread-pool path);
* the series, counted on the raw answer before it is parsed (:func:`too_many_series_in`:
  a 90,000-series answer just under the size cap took 0.9 s to parse, holding the GIL
  from its worker thread, so the event loop stalled as long), and again on the decoded
  result before any :class:`~watchdog.foundation.model.Series` is built (:func:`too_many_series`).

Either way the sample is a permanent error naming the size or the count: the query is
too broad, and asking again will not change that. The rest of the module turns a
decoded ``data.result`` into a :class:`~watchdog.foundation.model.Sample` or range series.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from watchdog.foundation.errors import PermanentError
from watchdog.foundation.model import Sample, Series
from watchdog.plumbing import httpedge

MALFORMED = "malformed response from Prometheus"
DEFAULT_MAX_SERIES = 10_000
DEFAULT_MAX_BYTES = 8 << 20


RangeSeries = tuple[dict[str, str], list[tuple[float, float]]]

_RESULT = '"result":'
_MARK = '"\\u0000"'  # a JSON string, in place of the array taken out


class ResponseTooLarge(PermanentError):
    """Prometheus answered more than ``prometheus_max_response_bytes``."""


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def too_large(limit: int, size: int | None = None) -> ResponseTooLarge:
    """The error for a body over ``limit`` (``size``: its declared length, if known)."""
    said = f"is {_mib(size)}, larger" if size is not None else "is larger"
    return ResponseTooLarge(
        f"Prometheus's answer {said} than the {_mib(limit)} cap "
        "(prometheus_max_response_bytes): aggregate the query (sum by …) or narrow it"
    )


def too_many_series(result: Any, limit: int) -> str | None:
    """Why a decoded instant/range ``result`` holds too many series, or None."""
    if isinstance(result, list) and len(result) > limit:
        return _over(len(result), limit)
    return None


def too_many_series_in(body: bytes, limit: int) -> str | None:
    """Why a raw answer holds too many series, or None; counted without parsing it.

    Each element of ``data.result`` (vector or matrix) has one ``"metric":{``, and the
    bytes occur nowhere else: label values are strings whose quotes are escaped, and a
    label named ``metric`` holds a string, not an object. Prometheus writes compact
    JSON; a server that spaces it differently is counted after parsing instead.
    """
    count = body.count(b'"metric":{') + body.count(b'"metric": {')
    return _over(count, limit) if count > limit else None


def _over(count: int, limit: int) -> str:
    return (
        f"query returned {count:,} series, over the cap of {limit:,} "
        "(prometheus_max_series): aggregate it (sum by …) or narrow its selector"
    )


class CappedBody:
    """Wraps a urllib3 response so that requests reads at most ``limit`` bytes of it.

    requests reads a body through ``raw.stream(…, decode_content=True)``; anything else
    (``release_conn``, ``headers``, ``closed``…) is the wrapped response's.
    """

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._limit = limit

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield decoded chunks; raise ResponseTooLarge once past the limit."""
        seen = 0
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            seen += len(chunk)
            if seen > self._limit:
                self._raw.close()  # drop the connection rather than read the rest
                raise too_large(self._limit)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def cap_response(response: requests.Response, limit: int) -> None:
    """Refuse a declared ``Content-Length`` over ``limit``; cap what is read otherwise.

    Called from a requests response hook, i.e. before requests reads the body.
    """
    declared = response.headers.get("Content-Length", "")
    # A compressed body over the limit decompresses to more still.
    if declared.isdigit() and int(declared) > limit:
        response.raw.close()
        raise too_large(limit, int(declared))
    response.raw = CappedBody(response.raw, limit)


def split_result(body: bytes) -> tuple[Any, list[Any]] | None:
    """The answer's envelope (``data.result`` emptied) and the result's elements, decoded
    one element at a time; None when the body is not shaped for that (parse it whole).

    ``json.loads`` holds the GIL for its whole run, so a worker thread parsing 90,000
    series stalled the event loop 0.3-0.9 s; between two elements the interpreter can
    switch threads, so the loop runs every few milliseconds however big the answer.
    """
    if httpedge.too_deep(body, httpedge.MAX_DEPTH):
        return None
    try:
        text = body.decode("utf-8")
        start = text.index(_RESULT)
        items, end = _elements(text, _skip(text, start + len(_RESULT)))
        envelope = json.loads(text[:start] + _RESULT + _MARK + text[end:])
    except (ValueError, RecursionError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    # The mark stands where an array was: the first "result": was data.result.
    if not isinstance(data, dict) or data.get("result") != "\0":
        return None
    data["result"] = []
    return envelope, items


def _elements(text: str, at: int) -> tuple[list[Any], int]:
    """The JSON array's elements from ``text[at]`` (a ``[``), and the index past its ``]``."""
    if text[at : at + 1] != "[":
        raise ValueError("not an array")
    decode, items = json.JSONDecoder().raw_decode, list[Any]()
    at = _skip(text, at + 1)
    if text[at : at + 1] == "]":
        return items, at + 1
    while True:
        item, at = decode(text, at)
        items.append(item)
        at = _skip(text, at)
        sep = text[at : at + 1]
        if sep == "]":
            return items, at + 1
        if sep != ",":
            raise ValueError("not an array")
        at = _skip(text, at + 1)


def _skip(text: str, at: int) -> int:
    """The index of the first character at or after ``at`` that is not JSON whitespace."""
    while text[at : at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def parse_instant(result: Any, max_series: int = DEFAULT_MAX_SERIES) -> Sample:
    """Turn ``data.result`` of an instant query into a Sample (type detected by shape)."""
    found = instant_elements(result, max_series)
    return found if isinstance(found, Sample) else series_of(found)


def instant_elements(result: Any, max_series: int = DEFAULT_MAX_SERIES) -> Sample | tuple[Any, ...]:
    """An instant vector's elements, not yet series (see :func:`compact`); any other
    answer (a scalar, an empty or malformed result, a matrix, too many series) as the
    Sample it stands for."""
    if not isinstance(result, list):
        return Sample.failed(MALFORMED)
    if not result:
        return Sample.no_data("empty result")
    if (too_many := too_many_series(result, max_series)) is not None:
        return Sample.failed(too_many, transient=False)
    try:
        if _is_pair(result):
            return _scalar_or_string(result)
        if any("values" in e or "histograms" in e for e in result):
            return Sample.failed(
                "query returned a range vector (matrix); use an instant vector, "
                "e.g. wrap it in rate() or last_over_time()",
                transient=False,
            )
    except TypeError:
        return Sample.failed(MALFORMED)
    return tuple([compact(e) for e in result])


def compact(element: Any) -> Any:
    """A well-formed vector element as ``(labels, value text)``; any other as it is
    (:func:`series_of` says what is wrong with it).

    A shared answer is held for a scrape interval (sources/shared.py), one series per
    window: as decoded, each was a dict, a list and a float (~280 bytes, two objects the
    garbage collector walks) around its labels and value; as a pair, 56 bytes and one.
    10,000 windows' RSS fell from 469 to 391 MiB (bench/scale.py).
    """
    try:
        labels, value = element["metric"], element["value"][1]
    except (KeyError, TypeError, IndexError):
        return element
    return (labels, value) if type(labels) is dict and type(value) is str else element


def labels_of(element: Any) -> dict[str, Any]:
    """An element's labels, compact (:func:`compact`) or as decoded; {} when none."""
    metric = element[0] if type(element) is tuple else None
    if metric is None and isinstance(element, dict):
        metric = element.get("metric")
    return metric if isinstance(metric, dict) else {}


def series_of(elements: Sequence[Any], detail: str | None = None) -> Sample:
    """The Sample of an instant vector's elements (see :func:`instant_elements`)."""
    try:
        series = tuple(_series(e) for e in elements)
    except PermanentError as exc:
        return Sample.failed(str(exc), transient=False)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return Sample.failed(MALFORMED)
    return Sample.of(*series, detail=detail or f"{len(series)} series")


def _is_pair(result: list[Any]) -> bool:
    return len(result) == 2 and isinstance(result[0], int | float) and isinstance(result[1], str)


def _scalar_or_string(result: list[Any]) -> Sample:
    try:
        value = float(result[1])
    except ValueError:
        return Sample.failed("query returned a string, not a number", transient=False)
    return Sample.of(value, detail="scalar")


def _series(element: Any) -> Series:
    if type(element) is tuple:  # compact(): checked when the answer was read
        labels, value = element
    else:
        if "value" not in element and "histogram" in element:
            raise PermanentError(
                "query returned native histogram samples; use histogram_quantile() "
                "or histogram_count() to get numbers"
            )
        labels, value = element["metric"], element["value"][1]
    # JSON keys are strings: the decoded dict is kept as it is when its values are too
    # (a third of the cost of 10,000 series was copying them)
    if "__name__" in labels or not all(type(v) is str for v in labels.values()):
        labels = {str(k): str(v) for k, v in labels.items() if k != "__name__"}
    return Series(float(value), labels)


def parse_range(result: Any) -> list[RangeSeries]:
    """Turn ``data.result`` of a range query into ``(labels, [(ts, value), ...])`` pairs."""
    if not isinstance(result, list):
        raise TypeError("result is not a list")
    out: list[RangeSeries] = []
    for element in result:
        if "values" not in element:
            raise PermanentError("range query did not return a matrix")
        labels = {str(k): str(v) for k, v in element["metric"].items() if k != "__name__"}
        points = [(float(ts), float(v)) for ts, v in element["values"]]
        out.append((labels, points))
    return out
