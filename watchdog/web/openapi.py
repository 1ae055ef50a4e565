"""The OpenAPI 3.1 document of the HTTP API, generated from the pydantic wire models.

Schemathesis checks live responses against it, so every status a route can answer
is listed, and ``default`` covers the JSON error envelope for the rest (405, 500, 503).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from watchdog import __version__
from watchdog.foundation.model import WindowPhase
from watchdog.web.schemas import (
    SAFE_SCHEMA,
    ActionIn,
    DeploymentIn,
    ErrorOut,
    StatusOut,
)
from watchdog.web.window_schemas import WindowDetailOut, WindowListOut, WindowOut

REF = "#/components/schemas/{model}"
ACTIONS = {
    "hold": "Veto automatic rollback; rules keep running.",
    "resume": "Lift a hold.",
    "rollback": "Roll back now (manual authority), exactly once.",
    "approve": "Approve the rollback an `approve` rule (or a risky plan) waits for; "
    "journaled `approved`, linked to its `approval_needed`.",
    "abort": "Close the window without rolling back.",
}
ERRORS = {
    400: "Malformed request body (not UTF-8 JSON) or body missing.",
    401: "Missing or wrong bearer token.",
    404: "No such window.",
    409: "The window's phase does not allow this.",
    413: "Request body too large.",
    415: "Content type is not application/json.",
    422: "Validation failed; `field` names the offending input.",
    429: "Too many open windows (`max_open_windows`): close some or raise the limit.",
    503: "Busy or cannot record now: retry later.",
}
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (DeploymentIn, "validation"),
    (ActionIn, "validation"),
    (WindowOut, "serialization"),
    (WindowListOut, "serialization"),
    (WindowDetailOut, "serialization"),
    (StatusOut, "serialization"),
    (ErrorOut, "serialization"),
]


@dataclass(frozen=True)
class OpenApiPart:
    """Paths (and the models they refer to) that a module adds along with its routes."""

    paths: dict[str, Any]
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = field(default_factory=list)
    security_schemes: dict[str, Any] = field(default_factory=dict)


# Route modules added through build_web_app's extra_routes append their parts here.
OPENAPI_PARTS = web.AppKey("watchdog.openapi_parts", list[OpenApiPart])


def build_openapi(version: str = __version__, parts: Sequence[OpenApiPart] = ()) -> dict[str, Any]:
    """The whole document (a fresh dict each call), with ``parts`` merged in."""
    models = _MODELS + [m for p in parts for m in p.models]
    _, defs = models_json_schema(models, ref_template=REF)
    paths = {**_ops_paths(), **_api_paths()}
    schemes: dict[str, Any] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    for part in parts:
        paths.update(part.paths)
        schemes.update(part.security_schemes)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rollback-watchdog",
            "version": version,
            "description": "Guards the minutes after a deploy and rolls it back once.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": schemes,
        },
        "security": [{"bearerAuth": []}],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _json_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _ok(name: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": _json_content(name)}


def _errors(*statuses: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        str(s): {"description": ERRORS[s], "content": _json_content("ErrorOut")} for s in statuses
    }
    out["default"] = {"description": "Any other error.", "content": _json_content("ErrorOut")}
    return out


def _ops_paths() -> dict[str, Any]:
    open_get = {"security": [], "tags": ["operations"]}
    return {
        "/healthz": {
            "get": {
                **open_get,
                "operationId": "healthz",
                "summary": "Liveness: the process answers.",
                "responses": {"200": _ok("StatusOut"), **_errors()},
            }
        },
        "/readyz": {
            "get": {
                **open_get,
                "operationId": "readyz",
                "summary": "Readiness: 503 while the service cannot do its job.",
                "responses": {
                    "200": _ok("StatusOut"),
                    "503": {"description": "Not ready.", "content": _json_content("ErrorOut")},
                    **_errors(),
                },
            }
        },
        "/metrics": {
            "get": {
                **open_get,
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["operations"],
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(401),
                },
            }
        },
    }


def _id_param() -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }


def _list_params() -> list[dict[str, Any]]:
    phase = {"type": "string", "enum": [p.value for p in WindowPhase]}
    return [
        {"name": "service", "in": "query", "schema": SAFE_SCHEMA},
        {"name": "environment", "in": "query", "schema": SAFE_SCHEMA},
        {
            "name": "phase",
            "in": "query",
            "description": "Repeat (or separate with commas) to ask for several phases.",
            "schema": {"type": "array", "items": phase},
            "style": "form",
            "explode": True,
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        },
    ]


def _api_paths() -> dict[str, Any]:
    tags = ["deployments"]
    paths: dict[str, Any] = {
        "/api/v1/deployments": {
            "post": {
                "tags": tags,
                "operationId": "openWindow",
                "summary": "A deploy happened: open its watch window.",
                "requestBody": {"required": True, "content": _json_content("DeploymentIn")},
                "responses": {
                    "201": {
                        **_ok("WindowOut", "Window opened."),
                        "headers": {
                            "Location": {
                                "description": "Path of the new window.",
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    **_errors(400, 401, 413, 415, 422, 429),
                },
            },
            "get": {
                "tags": tags,
                "operationId": "listWindows",
                "summary": "Windows, newest first.",
                "parameters": _list_params(),
                "responses": {"200": _ok("WindowListOut"), **_errors(401, 422)},
            },
        },
        "/api/v1/deployments/{id}": {
            "parameters": [_id_param()],
            "get": {
                "tags": tags,
                "operationId": "getWindow",
                "summary": "A window with its rules and journal.",
                "responses": {"200": _ok("WindowDetailOut"), **_errors(401, 404)},
            },
        },
    }
    for name, summary in ACTIONS.items():
        paths[f"/api/v1/deployments/{{id}}/{name}"] = {
            "parameters": [_id_param()],
            "post": {
                "tags": tags,
                "operationId": f"{name}Window",
                "summary": summary,
                "requestBody": {"required": False, "content": _json_content("ActionIn")},
                "responses": {
                    "200": _ok("WindowOut"),
                    "202": {
                        "description": "Queued for the leader (header Watchdog-Queued says "
                        "within how many seconds it acts).",
                        "content": _json_content("WindowOut"),
                    },
                    **_errors(400, 401, 404, 409, 413, 415, 422),
                },
            },
        }
    return paths
