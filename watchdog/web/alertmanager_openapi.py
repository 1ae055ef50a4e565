"""The receiver's and the alert list's entries in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from watchdog.web.alertmanager_schema import AlertListOut, WebhookPayload
from watchdog.web.openapi import OpenApiPart, _errors, _json_content, _ok


def _receipt_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", "received", "new", "windows"],
        "properties": {
            "status": {"type": "string"},
            "received": {"type": "integer"},
            "new": {"type": "integer"},
            "windows": {"type": "array", "items": {"type": "string"}},
        },
    }


def alertmanager_part(receiver_path: str, alerts_path: str, *, own_auth: bool) -> OpenApiPart:
    """The two routes; ``own_auth`` when the receiver checks its own credentials."""
    security: list[dict[str, list[str]]] | None = None
    if own_auth:
        security = [{"receiverBearer": []}, {"receiverBasic": []}]
    receive: dict[str, Any] = {
        "tags": ["alertmanager"],
        "operationId": "receiveAlerts",
        "summary": "Alertmanager webhook (payload version 4). 4xx only for the sender's "
        "mistakes; anything retryable is 503.",
        "requestBody": {"required": True, "content": _json_content("WebhookPayload")},
        "responses": {
            "200": {
                "description": "Recorded.",
                "content": {"application/json": {"schema": _receipt_schema()}},
            },
            **_errors(400, 401, 413, 415, 422, 503),
        },
    }
    if security is not None:
        receive["security"] = security
    paths = {
        receiver_path: {"post": receive},
        alerts_path: {
            "get": {
                "tags": ["alertmanager"],
                "operationId": "listAlerts",
                "summary": "Alerts received, newest first, in a window or not.",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["firing", "resolved"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {"200": _ok("AlertListOut"), **_errors(401, 422)},
            }
        },
    }
    schemes = {
        "receiverBearer": {"type": "http", "scheme": "bearer"},
        "receiverBasic": {"type": "http", "scheme": "basic"},
    }
    return OpenApiPart(
        paths=paths,
        models=[(WebhookPayload, "validation"), (AlertListOut, "serialization")],
        security_schemes=schemes if own_auth else {},
    )
