"""The ``render`` step: roll a Render service back through Render's public API.

1. ``PATCH /v1/services/{id}`` ``{"autoDeploy": "no"}`` (when ``disable_auto_deploy``)
   first, so a push landing during the rollback cannot bring the bad build back.
2. ``GET /v1/services/{id}/deploys`` (newest first, items ``{"deploy": {…}, "cursor"}``):
   the target is ``deploy_id`` if the step names one, else the newest ``deactivated``
   deploy older than the one ``live`` now: the last build that served successfully.
3. ``POST /v1/services/{id}/rollback`` ``{"deployId": target}`` answers the new deploy.
4. ``GET /v1/services/{id}/deploys/{new}`` every ``poll_interval`` until ``live``
   (success) or a failed status (permanent failure).

A retried step must not start a second rollback: if the newest deploy already is a
rollback (``trigger: rollback``) in progress or live, the step follows it instead.
"""

from __future__ import annotations

from typing import Any

import httpx

from watchdog.actions.base import ActionContext, ExecutorParts, StepKind, StepResult
from watchdog.actions.spec import RenderStep
from watchdog.foundation.clock import Clock
from watchdog.foundation.errors import PermanentError
from watchdog.plumbing import httpedge
from watchdog.rulefile.template import render, url_escape

FAILED = frozenset(
    {"build_failed", "update_failed", "canceled", "pre_deploy_failed", "deactivated"}
)
IN_PROGRESS = frozenset(
    {"created", "queued", "build_in_progress", "update_in_progress", "pre_deploy_in_progress"}
)
PAGE = 20
CALL_TIMEOUT = 30.0
ANSWER_LIMIT = 4 << 20  # a page of 20 deploys is a few KiB


class RenderExecutor:
    """Runs :class:`~watchdog.actions.spec.RenderStep` with a shared httpx client."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: str | None, clock: Clock
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._clock = clock

    async def run(self, step: RenderStep, ctx: ActionContext) -> StepResult:
        """Find the target, roll back to it, follow the new deploy until it settles."""
        if not self._key:
            raise PermanentError("render step: no API key (set WATCHDOG_RENDER_API_KEY)")
        service = render(step.service_id, ctx.variables, url_escape)
        if step.disable_auto_deploy:
            await self._call(step, "PATCH", f"/services/{service}", {"autoDeploy": "no"})
        deploys = await self._deploys(step, service)
        running = _rollback_in_progress(deploys)
        if running is None:
            target = await self._target(step, ctx, deploys)
            running = await self._call(
                step, "POST", f"/services/{service}/rollback", {"deployId": target}
            )
        deploy = await self._follow(step, service, running)
        return StepResult(
            f"render deploy {deploy.get('id')} is live",
            {"deploy_id": deploy.get("id"), "status": deploy.get("status")},
        )

    async def _deploys(self, step: RenderStep, service: str) -> list[dict[str, Any]]:
        body = await self._call(step, "GET", f"/services/{service}/deploys?limit={PAGE}")
        if not isinstance(body, list):
            raise PermanentError("render: deploy list is not a JSON array")
        return [item["deploy"] for item in body if isinstance(item, dict) and "deploy" in item]

    async def _target(
        self, step: RenderStep, ctx: ActionContext, deploys: list[dict[str, Any]]
    ) -> str:
        if step.deploy_id:
            return render(step.deploy_id, ctx.variables, lambda v: v)
        seen_live = False
        for deploy in deploys:
            if deploy.get("status") == "live":
                seen_live = True
            elif seen_live and deploy.get("status") == "deactivated":
                return str(deploy["id"])
        raise PermanentError("render: no earlier successful deploy to roll back to")

    async def _follow(self, step: RenderStep, service: str, deploy: Any) -> dict[str, Any]:
        deadline = self._clock.now() + step.timeout * 0.9
        while True:
            if not isinstance(deploy, dict) or "id" not in deploy:
                raise PermanentError("render: answer has no deploy id")
            status = str(deploy.get("status"))
            if status == "live":
                return deploy
            if status in FAILED:
                raise PermanentError(f"render deploy {deploy['id']} ended {status}")
            if self._clock.now() + step.poll_interval > deadline:
                # Not transient: a retry must not start another rollback; people look.
                raise PermanentError(
                    f"render deploy {deploy['id']} still {status} after {step.timeout:g}s"
                )
            await self._clock.sleep(step.poll_interval)
            deploy = await self._call(step, "GET", f"/services/{service}/deploys/{deploy['id']}")

    async def _call(self, step: RenderStep, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        where = f"render {method} {path.split('?')[0]}"
        answer = await httpedge.fetch(
            self._client, method, self._base + path, what=where, timeout=CALL_TIMEOUT,
            max_bytes=ANSWER_LIMIT, headers=headers, json_body=body,
        )  # fmt: skip
        httpedge.judge(answer, where, now=self._clock.now())
        if not answer.body:
            return {}
        try:
            return await httpedge.parse_json(answer.body)
        except ValueError as exc:
            raise PermanentError(f"{where}: answer is {exc}") from None


def _rollback_in_progress(deploys: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest deploy, when it is a rollback that has not failed (a retried step)."""
    if not deploys:
        return None
    newest = deploys[0]
    if newest.get("trigger") == "rollback" and newest.get("status") in {*IN_PROGRESS, "live"}:
        return newest
    return None


def _build(p: ExecutorParts) -> RenderExecutor:
    s = p.settings
    key = s.render_api_key.get_secret_value() if s.render_api_key else None
    return RenderExecutor(p.client, s.render_api_url, key, p.clock)


KIND = StepKind("render", RenderStep, _build)
