"""The OpenAPI document for /api/v1; each capability adds its paths here."""

from __future__ import annotations

from typing import Any

from sigdesk import __version__

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad request", 401: "Missing or invalid token", 403: "Not allowed", 404: "Not found",
            409: "WhatsApp is not connected", 422: "Refused by WhatsApp's rules (the message says why)",
            502: "Meta refused the request"}
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
                "Conversation": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "status": {"type": "string", "enum": ["open", "pending", "snoozed", "resolved"]},
                    "assignee_id": {"type": ["integer", "null"]}, "unread_count": {"type": "integer"},
                    "last_message_at": {"type": ["string", "null"], "format": "date-time"},
                    "window_open": {"type": "boolean"}, "window_closes_at": {"type": ["string", "null"], "format": "date-time"},
                    "contact": {"type": "object"}}},
                "Message": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "wamid": {"type": ["string", "null"]}, "direction": {"type": "string", "enum": ["in", "out"]},
                    "type": {"type": "string"}, "text": {"type": ["string", "null"]}, "caption": {"type": ["string", "null"]},
                    "media": {"type": ["object", "null"]}, "details": {}, "reply_to_wamid": {"type": ["string", "null"]},
                    "forwarded": {"type": "boolean"},
                    "status": {"type": ["string", "null"], "enum": ["queued", "sending", "sent", "delivered", "read", "played", "failed", None]},
                    "error": {"type": ["object", "null"]}, "reactions": {"type": "array", "items": {"type": "string"}},
                    "timestamp": {"type": "string", "format": "date-time"}}},
                "SendMessage": {"type": "object", "description": "Either 'text', or 'type' plus an object named after it, shaped as in Meta's Cloud API (text, image, video, audio, document, sticker, interactive, reaction, location, contacts, template).",
                    "properties": {"text": {"type": "string", "maxLength": 4096}, "preview_url": {"type": "boolean"},
                                   "type": {"type": "string"}, "reply_to": {"type": "string", "description": "wamid of the message to quote"}}},
                "Template": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"}, "language": {"type": "string"},
                    "category": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]},
                    "components": {"type": "array"}, "variables": {"type": "object"}}},
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
        "paths": {**_messaging_paths(),
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


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _paged(name: str, schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"type": "object", "properties": {
        name: {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}},
        "next_before": {"type": ["integer", "null"]}}}}}}


PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "id from next_before"},
]
CONVERSATION_ID = {"name": "conversation_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _messaging_paths() -> dict[str, Any]:
    return {
        "/conversations": {"get": {
            "summary": "Conversations you may see, latest activity first", "operationId": "listConversations",
            "parameters": PAGING,
            "responses": {"200": {"description": "A page of conversations", **_paged("conversations", "Conversation")}, **_errors(400, 401)},
        }},
        "/conversations/{conversation_id}/messages": {
            "get": {
                "summary": "Messages of a conversation, newest first", "operationId": "listMessages",
                "parameters": [CONVERSATION_ID, *PAGING],
                "responses": {"200": {"description": "A page of messages", **_paged("messages", "Message")}, **_errors(400, 401, 404)},
            },
            "post": {
                "summary": "Queue a WhatsApp message (sent in the background)", "operationId": "sendMessage",
                "parameters": [CONVERSATION_ID],
                "requestBody": {"required": True, **_json("SendMessage")},
                "responses": {"202": {"description": "Queued", **_json("Message")}, **_errors(400, 401, 404, 422)},
            },
        },
        "/conversations/{conversation_id}/messages/{message_id}/retry": {"post": {
            "summary": "Send a failed message again", "operationId": "retryMessage",
            "parameters": [CONVERSATION_ID, {"name": "message_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"202": {"description": "Queued again", **_json("Message")}, **_errors(401, 404, 422)},
        }},
        "/conversations/{conversation_id}/read": {"post": {
            "summary": "Mark the conversation read (and send a read receipt when enabled)", "operationId": "markRead",
            "parameters": [CONVERSATION_ID],
            "responses": {"200": {"description": "Marked read"}, **_errors(401, 404)},
        }},
        "/media": {"post": {
            "summary": "Upload an attachment after checking its real type and size", "operationId": "uploadMedia",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file", "type"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "type": {"type": "string", "enum": ["image", "video", "audio", "document", "sticker"]}}}}}},
            "responses": {"201": {"description": "Uploaded; use the id in a media message"}, **_errors(400, 401, 409, 422, 502)},
        }},
        "/search": {"get": {
            "summary": "Full-text search of message text and contacts you may see, newest first", "operationId": "search",
            "parameters": [
                {"name": "q", "in": "query", "required": True, "schema": {"type": "string", "maxLength": 200},
                 "description": "Plain words; every word must match, the last one as a prefix"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}},
            ],
            "responses": {"200": {"description": "Message hits (snippet_html is HTML-escaped, hits in <mark>) and contact hits",
                                  "content": {"application/json": {"schema": {"type": "object", "properties": {
                "query": {"type": "string"},
                "messages": {"type": "array", "items": {"type": "object", "properties": {
                    "message_id": {"type": "integer"}, "conversation_id": {"type": "integer"}, "contact_name": {"type": "string"},
                    "snippet_html": {"type": "string"}, "timestamp": {"type": ["string", "null"], "format": "date-time"}}}},
                "contacts": {"type": "array", "items": {"type": "object", "properties": {
                    "contact_id": {"type": "integer"}, "conversation_id": {"type": "integer"}, "name": {"type": "string"},
                    "wa_id": {"type": ["string", "null"]}}}}}}}}},
                **_errors(400, 401)},
        }},
        "/templates": {"get": {
            "summary": "Message templates synced from Meta", "operationId": "listTemplates",
            "responses": {"200": {"description": "Templates", "content": {"application/json": {"schema": {"type": "object", "properties": {
                "templates": {"type": "array", "items": {"$ref": "#/components/schemas/Template"}}}}}}}, **_errors(401)},
        }},
    }
