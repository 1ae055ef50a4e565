"""A local fake of Grafana Loki's HTTP API: push, instant and range queries, /ready.

Grafana Loki is in neither Debian (Debian's ``loki`` package is an unrelated
pedigree-analysis program) nor PyPI, so tests run against this fake. It speaks Loki's
documented wire format: ``POST /loki/api/v1/push`` with JSON streams (``[["<ns>",
"line"], …]``, 204), ``GET /loki/api/v1/query`` / ``query_range`` answering
``{"status":"success","data":{"resultType":"vector"|"matrix","result":[…]}}`` with
nanosecond or float-second times, ``400`` with a plain-text parse error for queries it
cannot read, and ``401 no org id`` without ``X-Scope-OrgID`` when multi-tenant. It
evaluates the LogQL subset the rule pack uses: a stream selector (``=``, ``!=``,
``=~``, ``!~``), line filters (``|=``, ``!=``, ``|~``, ``!~``), ``count_over_time`` or
``rate`` over a range, optionally inside ``sum(…)`` / ``sum by (…) (…)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve

_QUERY = re.compile(
    r"\s*(?:sum\s*(?:by\s*\((?P<by>[^)]*)\)\s*)?\(\s*)?"
    r"(?P<fn>count_over_time|rate)\s*\(\s*(?P<logs>\{.*?\}.*?)\s*\[(?P<range>\d+(?:ms|s|m|h))\]\s*\)"
    r"\s*(?(by)\)|\)?)\s*",
    re.S,
)
_MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class FakeLoki:
    """Pushed lines per tenant, and every query request's headers."""

    tenant_required: bool = False
    lines: dict[str, list[tuple[dict[str, str], float, str]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/loki/api/v1/push", self._push)
        app.router.add_get("/loki/api/v1/query", self._query)
        app.router.add_get("/loki/api/v1/query_range", self._query_range)
        app.router.add_get("/ready", _ready)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _tenant(self, request: web.Request) -> str | None:
        tenant = request.headers.get("X-Scope-OrgID")
        if tenant is None and self.tenant_required:
            return None
        return tenant or "fake"

    async def _push(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        if tenant is None:
            return web.Response(status=401, text="no org id")
        body = await request.json()
        for stream in body["streams"]:
            for ts, line in stream["values"]:
                self.lines.setdefault(tenant, []).append((stream["stream"], int(ts) / 1e9, line))
        return web.Response(status=204)

    async def _query(self, request: web.Request) -> web.Response:
        return await self._answer(request, ranged=False)

    async def _query_range(self, request: web.Request) -> web.Response:
        return await self._answer(request, ranged=True)

    async def _answer(self, request: web.Request, *, ranged: bool) -> web.Response:
        self.requests.append(
            {"path": request.path, **request.query, "headers": dict(request.headers)}
        )
        tenant = self._tenant(request)
        if tenant is None:
            return web.Response(status=401, text="no org id")
        parsed = _QUERY.fullmatch(request.query.get("query", ""))
        if parsed is None:
            return web.Response(
                status=400, text="parse error : syntax error: unexpected IDENTIFIER"
            )
        lines = self.lines.get(tenant, [])
        if not ranged:
            at = _time(request.query["time"])
            vector = [
                {"metric": m, "value": [at, _num(v)]} for m, v in _evaluate(parsed, lines, at)
            ]
            return web.json_response(_envelope("vector", vector))
        start, end = _time(request.query["start"]), _time(request.query["end"])
        step = float(request.query["step"].rstrip("s"))
        series: dict[str, dict[str, Any]] = {}
        t = start
        while t <= end + 1e-9:
            for metric, value in _evaluate(parsed, lines, t):
                key = repr(sorted(metric.items()))
                series.setdefault(key, {"metric": metric, "values": []})["values"].append(
                    [t, _num(value)]
                )
            t += step
        return web.json_response(_envelope("matrix", list(series.values())))


async def _ready(_request: web.Request) -> web.Response:
    return web.Response(text="ready")


def _evaluate(
    parsed: re.Match[str], lines: list[tuple[dict[str, str], float, str]], at: float
) -> list[tuple[dict[str, str], float]]:
    selector, _, filters = parsed["logs"].partition("}")
    matchers = _MATCHER.findall(selector.lstrip("{"))
    checks = _FILTER.findall(filters)
    seconds = (
        int(re.match(r"\d+", parsed["range"]).group(0))
        * _UNITS[re.sub(r"\d+", "", parsed["range"])]
    )  # type: ignore[union-attr]
    counts: dict[str, tuple[dict[str, str], float]] = {}
    for labels, ts, line in lines:
        if (
            not (at - seconds < ts <= at)
            or not _labels_match(labels, matchers)
            or not _line_passes(line, checks)
        ):
            continue
        if parsed["by"] is not None:
            keep = {k.strip() for k in parsed["by"].split(",") if k.strip()}
            group = {k: v for k, v in labels.items() if k in keep}
        elif parsed.group(0).lstrip().startswith("sum"):
            group = {}
        else:
            group = dict(labels)
        key = repr(sorted(group.items()))
        counts[key] = (group, counts.get(key, (group, 0.0))[1] + 1)
    per = 1.0 / seconds if parsed["fn"] == "rate" else 1.0
    return [(g, n * per) for g, n in counts.values()]


def _labels_match(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        ok = {"=": have == value, "!=": have != value}.get(op)
        if ok is None:
            ok = bool(re.fullmatch(value, have)) == (op == "=~")
        if not ok:
            return False
    return True


def _line_passes(line: str, checks: list[tuple[str, str]]) -> bool:
    for op, text in checks:
        text = text.encode().decode("unicode_escape")
        found = text in line if op in ("|=", "!=") else re.search(text, line) is not None
        if found != (op in ("|=", "|~")):
            return False
    return True


def _time(text: str) -> float:
    return float(text) if "." in text or len(text) <= 10 else int(text) / 1e9


def _num(value: float) -> str:
    return f"{value:g}"


def _envelope(kind: str, result: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": result, "stats": {}}}
