"""A local fake of the Sentry Web API parts the watchdog uses.

- ``GET /api/0/projects/{org}/{project}/issues/``: the project's issues, filtered the
  way Sentry's search does for the terms we send (``is:unresolved``,
  ``firstRelease:"v"``, ``level:x``) and by ``environment``; ``limit`` honoured.
  Issues are Sentry's JSON shape (``id``, ``shortId``, ``title``, ``level``,
  ``status``, ``firstSeen``/``lastSeen`` ISO 8601, ``count`` as a string, …).
- ``POST /api/0/organizations/{org}/releases/{version}/deploys/``: a release deploy
  (``environment`` required; ``name``, ``url``, ``dateStarted``, ``dateFinished``
  optional) → 201 with the deploy; 404 for an unknown release, as Sentry answers.
- ``POST /api/0/organizations/{org}/releases/``: create a release (``version``,
  ``projects``) → 201 (208 when it exists).
Bearer token checked: 401 ``{"detail": "Invalid token"}``; unknown project 404.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes import serve


@dataclass
class FakeSentry:
    """Issues by project, releases, deploys and every request seen."""

    token: str
    org: str = "acme"
    issues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    releases: set[str] = field(default_factory=set)
    deploys: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None  # force an error answer
    url: str = ""
    _runner: web.AppRunner | None = None

    def add_issue(self, project: str, release: str, first_seen: float, *, env: str = "production",
                  title: str = "ZeroDivisionError", level: str = "error") -> None:  # fmt: skip
        issues = self.issues.setdefault(project, [])
        n = len(issues) + 1
        issues.append({
            "id": str(1000 + n), "shortId": f"{project.upper()}-{n}", "title": title,
            "culprit": "app.views in index", "level": level, "status": "unresolved",
            "firstSeen": _iso(first_seen), "lastSeen": _iso(first_seen), "count": "3",
            "userCount": 1, "permalink": f"https://sentry.invalid/issues/{1000 + n}/",
            "project": {"slug": project}, "_release": release, "_env": env,
        })  # fmt: skip

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        app.router.add_get("/api/0/projects/{org}/{project}/issues/", self._list)
        app.router.add_post("/api/0/organizations/{org}/releases/", self._release)
        app.router.add_post("/api/0/organizations/{org}/releases/{version}/deploys/", self._deploy)
        self._runner, self.url = await serve(app)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append({"method": request.method, "path": request.path,
                              "query": dict(request.query), "headers": dict(request.headers)})  # fmt: skip
        if self.status is not None:
            return web.json_response({"detail": "Internal Error"}, status=self.status)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"detail": "Invalid token"}, status=401)
        if request.match_info["org"] != self.org:
            return web.json_response(
                {"detail": "The requested resource does not exist"}, status=404
            )
        return None

    async def _list(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        project = request.match_info["project"]
        if project not in self.issues:
            return web.json_response(
                {"detail": "The requested resource does not exist"}, status=404
            )
        terms = dict(
            t.split(":", 1)
            for t in shlex.split(request.query.get("query", "is:unresolved"))
            if ":" in t
        )
        env = request.query.get("environment")
        found = [
            {k: v for k, v in i.items() if not k.startswith("_")}
            for i in self.issues[project]
            if (terms.get("is") != "unresolved" or i["status"] == "unresolved")
            and ("firstRelease" not in terms or i["_release"] == terms["firstRelease"])
            and ("level" not in terms or i["level"] == terms["level"])
            and (env is None or i["_env"] == env)
        ]
        return web.json_response(found[: int(request.query.get("limit", "100"))])

    async def _release(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        body = await request.json()
        version = str(body.get("version", ""))
        if not version or not body.get("projects"):
            return web.json_response({"version": ["This field is required."]}, status=400)
        status = 208 if version in self.releases else 201
        self.releases.add(version)
        return web.json_response({"version": version, "projects": body["projects"]}, status=status)

    async def _deploy(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        version = request.match_info["version"]
        if version not in self.releases:
            return web.json_response(
                {"detail": "The requested resource does not exist"}, status=404
            )
        body = await request.json()
        if not isinstance(body.get("environment"), str) or not re.fullmatch(
            r"[^/\s]{1,64}", body["environment"]
        ):
            return web.json_response({"environment": ["This field is required."]}, status=400)
        deploy = {"id": str(len(self.deploys) + 1), "version": version, **body}
        self.deploys.append(deploy)
        return web.json_response(deploy, status=201)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
