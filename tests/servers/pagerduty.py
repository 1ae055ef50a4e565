"""A local fake of PagerDuty's Events API v2 (``POST /v2/enqueue``).

Validates what PagerDuty validates (routing_key, event_action, a trigger's payload with
summary, source and a known severity) and answers ``202 {"status": "success",
"message": "Event processed", "dedup_key": …}`` or ``400 {"status": "invalid event"}``.
Keeps one incident per dedup_key, as PagerDuty does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import serve

SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class FakePagerDuty:
    """Received events and the incidents they opened, by dedup_key."""

    events: list[dict[str, Any]] = field(default_factory=list)
    incidents: dict[str, str] = field(default_factory=dict)  # dedup_key -> status
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _enqueue(self, request: web.Request) -> web.Response:
        body = await request.json()
        errors = _problems(body)
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                status=400,
            )
        self.events.append(body)
        key = body["dedup_key"]
        action = body["event_action"]
        if action == "trigger":
            self.incidents.setdefault(key, "triggered")
        elif key in self.incidents:
            self.incidents[key] = {"acknowledge": "acknowledged", "resolve": "resolved"}[action]
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )


def _problems(body: dict[str, Any]) -> list[str]:
    out = []
    if not body.get("routing_key"):
        out.append("'routing_key' is missing or blank")
    if body.get("event_action") not in {"trigger", "acknowledge", "resolve"}:
        out.append("'event_action' is invalid")
    if body.get("event_action") != "trigger" and not body.get("dedup_key"):
        out.append("'dedup_key' is required for acknowledge and resolve")
    if body.get("event_action") == "trigger":
        payload = body.get("payload") or {}
        for name in ("summary", "source"):
            if not payload.get(name):
                out.append(f"'payload.{name}' is missing or blank")
        if payload.get("severity") not in SEVERITIES:
            out.append("'payload.severity' is invalid")
    return out
