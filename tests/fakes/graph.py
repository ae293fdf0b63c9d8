"""A fake Graph API: a real HTTP server on loopback that checks requests the way Meta does.

It records what it received, can be told to fail the next calls with Meta-shaped errors, serves
media, and posts signed status webhooks back to SigDesk like Meta would.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

TOKEN = "EAAG-test-access-token"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "+1 555-010-0199"
VERIFIED_NAME = "Rosa's Bakery"
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


@dataclass
class Failure:
    code: int
    status: int = 400
    title: str = "error"
    details: str | None = None
    sleep: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGraph:
    token: str = TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    waba_id: str = WABA_ID
    requests: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = self._build()

    # --- control from tests -------------------------------------------------------------
    def fail_next(self, code: int, status: int = 400, count: int = 1, title: str = "error", details: str | None = None) -> None:
        self.failures.extend(Failure(code, status, title, details) for _ in range(count))

    def add_media(self, data: bytes, mime_type: str) -> str:
        media_id = f"{next(self._ids) + 900000000000}"
        self.media[media_id] = (data, mime_type)
        return media_id

    def messages_sent(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.path.endswith("/messages") and r.body.get("type")]

    def post_status(self, webhook_url: str, app_secret: str, wamid: str, status: str, recipient: str = "15550001111",
                    errors: list[dict[str, Any]] | None = None, biz_opaque: str | None = None) -> httpx.Response:
        entry: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": recipient}
        if errors:
            entry["errors"] = errors
        if biz_opaque:
            entry["biz_opaque_callback_data"] = biz_opaque
        body = {"object": "whatsapp_business_account", "entry": [{"id": self.waba_id, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100199", "phone_number_id": self.phone_number_id},
            "statuses": [entry]}}]}]}
        raw = json.dumps(body).encode()
        signature = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return httpx.post(webhook_url, content=raw, headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"})

    # --- the server -----------------------------------------------------------------------
    def _error(self, code: int, message: str, status: int = 400, details: str | None = None):
        payload: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
        if details:
            payload["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return jsonify(error=payload), status

    def _build(self) -> Flask:
        app = Flask("fake_graph")

        @app.before_request
        def check():
            body: Any = None
            if request.is_json:
                body = request.get_json(silent=True)
            elif request.form:
                body = dict(request.form)
            with self._lock:
                self.requests.append(Received(request.method, request.path, body, dict(request.headers)))
            if self.delay:
                time.sleep(self.delay)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._error(190, "Error validating access token: Session has expired", 401)
            if not request.path.startswith("/download/") and not re.match(r"^/v\d+\.\d/", request.path):
                return self._error(2500, "Unknown path components", 400)
            if self.failures and not request.path.startswith("/download/"):
                failure = self.failures.pop(0)
                return self._error(failure.code, failure.title, failure.status, failure.details)
            return None

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            if phone_id != self.phone_number_id:
                return self._error(100, "Unsupported post request. Object with ID does not exist")
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
                return self._error(100, "(#100) The parameter messaging_product is required.")
            if body.get("status") == "read":
                return jsonify(success=True) if body.get("message_id") else self._error(100, "message_id is required")
            kind = body.get("type")
            to = body.get("to")
            if not to or not str(to).isdigit():
                return self._error(100, "(#100) Invalid parameter", details="to must be a phone number")
            content = body.get(kind)
            problem = _check_content(kind, content)
            if problem:
                return self._error(100, "(#100) Invalid parameter", details=problem)
            wamid = f"wamid.FAKE{next(self._ids):08d}"
            with self._lock:
                self.sent.append(body)
            return jsonify(messaging_product="whatsapp", contacts=[{"input": to, "wa_id": to}], messages=[{"id": wamid}])

        @app.post("/<version>/<phone_id>/media")
        def upload(version, phone_id):
            upload = request.files.get("file")
            if upload is None or request.form.get("messaging_product") != "whatsapp":
                return self._error(100, "(#100) file and messaging_product are required")
            return jsonify(id=self.add_media(upload.read(), request.form.get("type") or upload.mimetype))

        @app.get("/download/<media_id>")
        def download(media_id):
            if media_id not in self.media:
                return self._error(100, "not found", 404)
            data, mime = self.media[media_id]
            return data, 200, {"Content-Type": mime}

        @app.get("/<version>/<object_id>")
        def get_object(version, object_id):
            if object_id == self.phone_number_id:
                return jsonify(id=object_id, display_phone_number=DISPLAY_NUMBER, verified_name=VERIFIED_NAME, quality_rating="GREEN")
            if object_id in self.media:
                data, mime = self.media[object_id]
                return jsonify(id=object_id, url=f"{self.url}/download/{object_id}", mime_type=mime,
                               sha256=hashlib.sha256(data).hexdigest(), file_size=len(data), messaging_product="whatsapp")
            return self._error(100, f"Unsupported get request. Object with ID '{object_id}' does not exist", 400, details="unknown id")

        @app.get("/<version>/<waba_id>/message_templates")
        def templates(version, waba_id):
            if waba_id != self.waba_id:
                return self._error(100, "Unsupported get request")
            start = int(request.args.get("after") or 0)
            page = self.templates[start:start + 2]
            after = start + len(page)
            paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(after)}}
            if after < len(self.templates):
                paging["next"] = f"{self.url}/{version}/{waba_id}/message_templates?after={after}"
            return jsonify(data=page, paging=paging)

        return app

    def start(self) -> "FakeGraph":
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


def _check_content(kind: Any, content: Any) -> str | None:
    if kind == "contacts":
        return None if isinstance(content, list) and content else "contacts must be a non-empty list"
    if not isinstance(content, dict):
        return f"the '{kind}' object is missing"
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body:
            return "text.body is required"
        if len(body) > 4096:
            return "text.body is too long"
    elif kind in MEDIA_TYPES:
        if not content.get("id") and not content.get("link"):
            return f"{kind}.id or {kind}.link is required"
    elif kind == "template":
        if not content.get("name") or not (content.get("language") or {}).get("code"):
            return "template.name and template.language.code are required"
    elif kind == "interactive":
        if content.get("type") not in ("button", "list", "cta_url", "product", "product_list", "flow"):
            return "interactive.type is invalid"
        if len((content.get("body") or {}).get("text") or "") > 1024:
            return "interactive.body.text is too long"
    elif kind == "reaction":
        if not content.get("message_id"):
            return "reaction.message_id is required"
    elif kind == "location":
        if "latitude" not in content or "longitude" not in content:
            return "location.latitude and location.longitude are required"
    else:
        return f"unknown message type {kind}"
    return None
