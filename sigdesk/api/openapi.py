"""The OpenAPI document for /api/v1; each capability adds its paths here."""

from __future__ import annotations

from typing import Any

from sigdesk import __version__

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad request", 401: "Missing or invalid token", 403: "Not allowed", 404: "Not found"}
    return {str(code): {"description": text[code], "content": {"application/json": {"schema": ERROR}}} for code in codes}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "SigDesk API", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Personal API token (sigdesk token create)"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                },
                "Me": {
                    "type": "object",
                    "required": ["id", "email", "name", "role", "two_factor"],
                    "properties": {
                        "id": {"type": "integer"},
                        "email": {"type": "string", "format": "email"},
                        "name": {"type": "string"},
                        "role": {"type": "string", "enum": ["owner", "admin", "agent"]},
                        "two_factor": {"type": "boolean"},
                    },
                },
            },
        },
        "paths": {
            "/me": {
                "get": {
                    "summary": "The user the token belongs to",
                    "operationId": "getMe",
                    "responses": {
                        "200": {"description": "The user", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}},
                        **_errors(401, 403),
                    },
                }
            }
        },
    }
