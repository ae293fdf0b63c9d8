"""A fake Graph API: a real HTTP server on loopback that checks requests the way Meta does.

It records what it received, can be told to fail calls with Meta-shaped errors (the next N calls,
or every send to one recipient), serves media, and posts signed status webhooks back to SigDesk
like Meta would. Templates are only checked by name and language once a test registers some.
"""

from __future__ import annotations

import base64
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
APP_SECRET = "fake-app-secret-0123456789"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "+1 555-010-0199"
VERIFIED_NAME = "Rosa's Bakery"
WABA_NAME = "Rosa's Bakery WABA"
APP_ID = "1234567890123456"
MESSAGING = "whatsapp_business_messaging"
MANAGEMENT = "whatsapp_business_management"
# Meta answers a phone number (GET /{waba-id}/phone_numbers, GET /{phone-number-id}) with the `fields` the request
# names, or else with a default set that leaves out the messaging limit tier: a client that does not ask for a
# field does not get it, here as there.
NUMBER_DEFAULT_FIELDS = ("id", "display_phone_number", "verified_name", "quality_rating")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
MB = 1024 * 1024
UPLOAD_LIMITS = {
    "image/jpeg": 5 * MB,
    "image/png": 5 * MB,
    "image/webp": 500 * 1024,
    "audio/aac": 16 * MB,
    "audio/amr": 16 * MB,
    "audio/mpeg": 16 * MB,
    "audio/mp4": 16 * MB,
    "audio/ogg": 16 * MB,
    "video/mp4": 16 * MB,
    "video/3gpp": 16 * MB,
}
DOCUMENT_LIMIT = 100 * MB
TITLES = {
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: Session has expired",
    80007: "(#80007) Rate limit issues",
    130429: "(#130429) Rate limit hit",
    131000: "(#131000) Something went wrong",
    131008: "(#131008) Required parameter is missing",
    131009: "(#131009) Parameter value is not valid",
    131026: "(#131026) Message undeliverable",
    131047: "(#131047) Re-engagement message",
    131048: "(#131048) Spam rate limit hit",
    131049: "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "(#131050) User has stopped marketing messages",
    131051: "(#131051) Unsupported message type",
    131053: "(#131053) Media upload error",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    200: "(#200) Permissions error",
    2200: "(#2200) Callback verification failed",
    132001: "(#132001) Template name does not exist in the translation",
    132015: "(#132015) Template is Paused",
    132016: "(#132016) Template is Disabled",
}
DETAILS = {
    131047: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
}


@dataclass
class Failure:
    code: int
    status: int = 400
    title: str | None = None
    details: str | None = None
    subcode: int | None = None
    times: int | None = None  # fail this many sends, then succeed (None: until cleared)


@dataclass
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeGraph:
    token: str = TOKEN
    phone_number_id: str = PHONE_NUMBER_ID
    waba_id: str = WABA_ID
    app_secret: str = APP_SECRET
    webhook_url: str | None = None
    requests: list[Received] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    recipient_failures: dict[str, Failure] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_page_size: int = 2
    sent: list[dict[str, Any]] = field(default_factory=list)
    # When each accepted send arrived (time.time(), beside `sent`): pacing is measured on Meta's side.
    sent_at: list[float] = field(default_factory=list)
    recipients: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    url: str = ""
    # What debug_token tells about the token: its permissions, the accounts they cover (None: every
    # account below), its expiry (0: never, as for a system user's token).
    scopes: list[str] = field(default_factory=lambda: [MESSAGING, MANAGEMENT, "business_management"])
    granted_wabas: list[str] | None = None
    token_expires_at: int = 0
    # The WhatsApp Business Accounts the token can see, each with its name and phone numbers.
    wabas: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per-account webhook overrides set through POST /{waba-id}/subscribed_apps.
    subscriptions: dict[str, dict[str, str]] = field(default_factory=dict)
    # Public address prefix -> local address, like a tunnel: where the handshake for a callback URL really goes.
    tunnels: dict[str, str] = field(default_factory=dict)
    # Requested version -> the version Meta upgrades it to, announcing the deprecation in a header.
    deprecated_versions: dict[str, str] = field(default_factory=dict)
    # Commerce catalogs: catalog id -> its items (ProductItem fields), the catalogs linked to each account,
    # the largest page served, and failures of one page of a listing (1: the first page).
    catalogs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    waba_catalogs: dict[str, list[str]] = field(default_factory=dict)
    catalog_page_size: int = 2
    catalog_failures: dict[int, Failure] = field(default_factory=dict)
    # Meta's throughput: more accepted sends than this in the last second are refused with 130429.
    throughput: float | None = None
    # The token is revoked (190) once this many sends were accepted.
    revoke_after: int | None = None

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        if not self.wabas:
            self.wabas = {self.waba_id: {"name": WABA_NAME, "numbers": [self.number()]}}
        self.app = self._build()

    def number(
        self,
        phone_number_id: str | None = None,
        display: str = DISPLAY_NUMBER,
        name: str = VERIFIED_NAME,
        quality: str = "GREEN",
        tier: str = "TIER_1K",
    ) -> dict[str, Any]:
        return {
            "id": phone_number_id or self.phone_number_id,
            "display_phone_number": display,
            "verified_name": name,
            "quality_rating": quality,
            "messaging_limit_tier": tier,
        }

    def add_waba(self, waba_id: str, name: str, numbers: list[dict[str, Any]]) -> None:
        """Another account the token can see (the connect flow then asks which one)."""
        with self._lock:
            self.wabas[waba_id] = {"name": name, "numbers": numbers}

    def deprecate(self, version: str, upgraded_to: str = "v26.0") -> None:
        """Calls to `version` are served by `upgraded_to`, with Meta's auto-upgrade warning header."""
        self.deprecated_versions[version] = upgraded_to

    def tunnel(self, public: str, local: str) -> None:
        """Meta's handshake for callback URLs under `public` reaches `local` (a tunnel or reverse proxy)."""
        self.tunnels[public.rstrip("/")] = local.rstrip("/")

    def add_catalog(self, catalog_id: str, items: list[dict[str, Any]], waba_id: str | None = None) -> None:
        """A catalog with these items (see catalog_item), linked to the account (default: the fake's own)."""
        with self._lock:
            self.catalogs[catalog_id] = list(items)
            self.waba_catalogs.setdefault(waba_id or self.waba_id, []).append(catalog_id)

    @staticmethod
    def catalog_item(
        retailer_id: str,
        name: str,
        price: Any = "€12.50",
        currency: Any = "EUR",
        availability: str = "in stock",
        category: str | None = None,
        item_id: str | None = None,
    ) -> dict[str, Any]:
        """One ProductItem as the Graph API reads it: `price` formatted with its symbol, like "€12.50"."""
        item = {
            "id": item_id or str(int(hashlib.md5(retailer_id.encode()).hexdigest()[:12], 16)),
            "retailer_id": retailer_id,
            "name": name,
            "price": price,
            "currency": currency,
            "availability": availability,
        }
        if category is not None:
            item["category"] = category
        return item

    def fail_catalog_page(self, page: int, code: int, status: int = 400, title: str | None = None) -> None:
        """Listing a catalog fails on this page (1: the first) with Meta's error, until clear_failures()."""
        with self._lock:
            self.catalog_failures[page] = Failure(code, status, title)

    # --- control from tests -------------------------------------------------------------
    def fail_next(
        self,
        code: int,
        status: int | None = None,
        count: int = 1,
        title: str | None = None,
        details: str | None = None,
        subcode: int | None = None,
    ) -> None:
        """The next `count` Graph calls (not media downloads) fail with this Meta error."""
        failure = Failure(code, status or (401 if code == 190 else 400), title, details, subcode)
        with self._lock:
            self.failures.extend(failure for _ in range(count))

    def fail_for(
        self,
        recipient: str,
        code: int,
        status: int = 400,
        title: str | None = None,
        details: str | None = None,
        times: int | None = None,
    ) -> None:
        """Every send to this recipient fails until clear_failures() (or its first `times` sends only);
        131047 (window closed) spares templates."""
        with self._lock:
            self.recipient_failures[recipient.lstrip("+")] = Failure(
                code, status or (401 if code == 190 else 400), title, details, times=times
            )

    def set_template_status(self, name: str, language: str, status: str) -> None:
        """Meta paused (PAUSED), disabled (DISABLED) or re-approved a template: sends of a paused one answer
        132015, of a disabled one 132016."""
        with self._lock:
            for template in self.templates:
                if template.get("name") == name and template.get("language") == language:
                    template["status"] = status

    def delete_template(self, name: str, language: str) -> None:
        """The template is deleted at Meta: sends of it answer 132001."""
        with self._lock:
            self.templates[:] = [
                t for t in self.templates if not (t.get("name") == name and t.get("language") == language)
            ]
            if not self.templates:
                self.templates.append({"name": "\x00deleted", "language": "-"})  # keep checking templates

    def clear_failures(self) -> None:
        with self._lock:
            self.failures.clear()
            self.recipient_failures.clear()
            self.catalog_failures.clear()

    def expire_token(self) -> None:
        """From now on the client's token is refused with code 190, as after Meta expires it."""
        self.token = "rotated-" + self.token

    def add_media(self, data: bytes, mime_type: str) -> str:
        with self._lock:
            media_id = f"{next(self._ids) + 900000000000}"
            self.media[media_id] = (data, mime_type)
        return media_id

    def messages_sent(self) -> list[dict[str, Any]]:
        return list(self.sent)

    def connect_webhook(self, url: str, app_secret: str | None = None) -> None:
        """Where status webhooks go: SigDesk's /webhooks/whatsapp, signed with its app secret."""
        self.webhook_url = url
        if app_secret is not None:
            self.app_secret = app_secret

    def status_payload(
        self,
        wamid: str,
        status: str,
        recipient: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        biz_opaque: str | None = None,
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": recipient or self.recipients.get(wamid, "15550001111"),
        }
        if status in ("sent", "delivered"):
            entry["conversation"] = {
                "id": hashlib.md5(entry["recipient_id"].encode()).hexdigest(),
                "origin": {"type": "service"},
            }
            entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service", "type": "regular"}
        if errors:
            entry["errors"] = errors
        if biz_opaque:
            entry["biz_opaque_callback_data"] = biz_opaque
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": re.sub(r"\D", "", DISPLAY_NUMBER),
                                    "phone_number_id": self.phone_number_id,
                                },
                                "statuses": [entry],
                            },
                        }
                    ],
                }
            ],
        }

    def send_status(
        self,
        wamid: str,
        status: str,
        *,
        code: int | None = None,
        recipient: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        biz_opaque: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST a signed status webhook like Meta's; `code` builds a Meta-shaped errors[] for failed."""
        if self.webhook_url is None:
            raise RuntimeError("call connect_webhook(url, app_secret) first")
        if code is not None and errors is None:
            errors = [
                {
                    "code": code,
                    "title": TITLES.get(code, "error"),
                    "message": TITLES.get(code, "error"),
                    "error_data": {"details": DETAILS.get(code, "")},
                }
            ]
        raw = json.dumps(self.status_payload(wamid, status, recipient, errors, biz_opaque)).encode()
        return self.post_signed(raw, signature)

    def post_signed(self, raw: bytes, signature: str | None = None) -> httpx.Response:
        signature = signature or "sha256=" + hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
        return httpx.post(
            self.webhook_url,
            content=raw,
            timeout=10,
            headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        )

    def post_status(
        self,
        webhook_url: str,
        app_secret: str,
        wamid: str,
        status: str,
        recipient: str = "15550001111",
        errors: list[dict[str, Any]] | None = None,
        biz_opaque: str | None = None,
    ) -> httpx.Response:
        """Older form of send_status taking the address and secret each time."""
        self.connect_webhook(webhook_url, app_secret)
        return self.send_status(wamid, status, recipient=recipient, errors=errors, biz_opaque=biz_opaque)

    # --- the server -----------------------------------------------------------------------
    @staticmethod
    def _error(
        code: int, message: str | None = None, status: int = 400, details: str | None = None, subcode: int | None = None
    ):
        payload: dict[str, Any] = {
            "message": message or TITLES.get(code, f"(#{code}) error"),
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AbCdEf123",
        }
        if subcode is not None:
            payload["error_subcode"] = subcode
        details = details or DETAILS.get(code)
        if details:
            payload["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return jsonify(error=payload), status

    def _fail(self, failure: Failure):
        return self._error(failure.code, failure.title, failure.status, failure.details, failure.subcode)

    def _record(self) -> None:
        body: Any = None
        if request.is_json:
            body = request.get_json(silent=True)
        elif request.form or request.files:
            body = dict(request.form)
            upload = request.files.get("file")
            if upload is not None:
                body["file"] = {"filename": upload.filename, "content_type": upload.mimetype}
        with self._lock:
            self.requests.append(
                Received(request.method, request.path, body, dict(request.headers), dict(request.args))
            )

    def _build(self) -> Flask:
        app = Flask("fake_graph")

        @app.before_request
        def check():
            self._record()
            if self.delay:
                time.sleep(self.delay)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return self._error(190, "Error validating access token: Session has expired", 401, subcode=463)
            if request.path.startswith("/download/"):
                return None
            if not re.match(r"^/v\d{1,3}\.0/", request.path):
                return self._error(2500, "Unknown path components", 400)
            with self._lock:
                failure = self.failures.pop(0) if self.failures else None
            return self._fail(failure) if failure else None

        @app.after_request
        def version_headers(response):
            match = re.match(r"^/(v\d{1,3}\.0)/", request.path)
            if match:
                asked = match.group(1)
                served = self.deprecated_versions.get(asked, asked)
                response.headers["facebook-api-version"] = served
                if asked in self.deprecated_versions:
                    response.headers["x-ad-api-version-warning"] = (
                        f"The call has been auto-upgraded to {served} as {asked} has been deprecated."
                    )
            return response

        @app.get("/<version>/debug_token")
        def debug_token(version):
            if request.args.get("input_token") != self.token:
                return self._error(190, "Invalid OAuth access token - Cannot parse access token")
            wabas = list(self.wabas) if self.granted_wabas is None else list(self.granted_wabas)
            return jsonify(
                data={
                    "app_id": APP_ID,
                    "type": "SYSTEM_USER",
                    "application": "Rosa's Desk",
                    "data_access_expires_at": 0,
                    "expires_at": self.token_expires_at,
                    "is_valid": True,
                    "issued_at": int(time.time()) - 3600,
                    "scopes": list(self.scopes),
                    "granular_scopes": [
                        {"scope": scope, "target_ids": wabas}
                        for scope in self.scopes
                        if scope in (MESSAGING, MANAGEMENT)
                    ],
                    "user_id": "122100000000000001",
                }
            )

        def _fields(number: dict[str, Any]) -> dict[str, Any]:
            """A phone number as Meta answers it: only the `fields` asked for (and its id), or the defaults."""
            asked = [name for name in (request.args.get("fields") or "").split(",") if name]
            wanted = {"id", *asked} if asked else set(NUMBER_DEFAULT_FIELDS)
            return {name: value for name, value in number.items() if name in wanted}

        def _waba(waba_id):
            """The account, or Meta's error for one the token may not manage."""
            visible = self.granted_wabas is None or waba_id in self.granted_wabas
            if waba_id not in self.wabas or not visible:
                return None, self._error(
                    100,
                    f"Unsupported get request. Object with ID '{waba_id}' does not exist, cannot be loaded due to "
                    "missing permissions, or does not support this operation",
                )
            if MANAGEMENT not in self.scopes:
                return None, self._error(200, details=f"{MANAGEMENT} is required", status=403)
            return self.wabas[waba_id], None

        @app.get("/<version>/<waba_id>/phone_numbers")
        def phone_numbers(version, waba_id):
            waba, error = _waba(waba_id)
            if error:
                return error
            numbers = [_fields(number) for number in waba["numbers"]]
            return jsonify(data=numbers, paging={"cursors": {"before": "0", "after": "0"}})

        @app.post("/<version>/<waba_id>/subscribed_apps")
        def subscribe(version, waba_id):
            _, error = _waba(waba_id)
            if error:
                return error
            uri = request.values.get("override_callback_uri")
            token = request.values.get("verify_token")
            if uri:
                if not uri.startswith("https://"):
                    return self._error(100, "(#100) override_callback_uri must be a valid HTTPS URL")
                if not token:
                    return self._error(100, "(#100) verify_token is required with override_callback_uri")
                problem = self._handshake(uri, token)
                if problem:
                    return self._error(
                        2200, f"(#2200) Callback verification failed with the following errors: {problem}"
                    )
                with self._lock:
                    self.subscriptions[waba_id] = {"override_callback_uri": uri, "verify_token": token}
            else:
                with self._lock:
                    self.subscriptions.setdefault(waba_id, {})
            return jsonify(success=True)

        @app.get("/<version>/<waba_id>/subscribed_apps")
        def subscribed(version, waba_id):
            _, error = _waba(waba_id)
            if error:
                return error
            if waba_id not in self.subscriptions:
                return jsonify(data=[])
            entry: dict[str, Any] = {"whatsapp_business_api_data": {"id": APP_ID, "name": "Rosa's Desk"}}
            uri = self.subscriptions[waba_id].get("override_callback_uri")
            if uri:
                entry["override_callback_uri"] = uri
            return jsonify(data=[entry])

        @app.post("/<version>/<phone_id>/messages")
        def messages(version, phone_id):
            if MESSAGING not in self.scopes:
                return self._error(10, "(#10) Application does not have permission for this action", status=403)
            if phone_id != self.phone_number_id:
                return self._error(100, f"Unsupported post request. Object with ID '{phone_id}' does not exist")
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
                return self._error(100, "(#100) The parameter messaging_product is required.")
            if body.get("status") == "read":
                if not body.get("message_id"):
                    return self._error(131008, details="message_id is required")
                return jsonify(success=True)
            to = str(body.get("to") or "")
            if not re.fullmatch(r"\+?\d{6,20}", to):
                return self._error(131009, details="to must be a phone number")
            if body.get("recipient_type", "individual") != "individual":
                return self._error(131009, details="recipient_type must be individual")
            kind = body.get("type")
            with self._lock:
                failure = self.recipient_failures.get(to.lstrip("+"))
                if failure is not None and failure.times is not None:
                    if failure.times <= 0:
                        failure = None
                    else:
                        failure.times -= 1
                refusal = self._refusal(to)
            if refusal is not None:
                return refusal
            if failure and not (failure.code == 131047 and kind == "template"):
                return self._fail(failure)
            problem = check_content(kind, body.get(kind)) or self._check_template(kind, body.get(kind))
            if problem:
                code, details = problem
                return self._error(code, details=details)
            context = body.get("context")
            if context is not None and not (isinstance(context, dict) and context.get("message_id")):
                return self._error(131009, details="context.message_id is required")
            with self._lock:
                wamid = f"wamid.FAKE{next(self._ids):08d}"
                self.sent.append(body)
                self.sent_at.append(time.time())
                self.recipients[wamid] = to.lstrip("+")
            return jsonify(
                messaging_product="whatsapp",
                contacts=[{"input": to, "wa_id": to.lstrip("+")}],
                messages=[{"id": wamid}],
            )

        @app.post("/<version>/<phone_id>/media")
        def upload(version, phone_id):
            upload = request.files.get("file")
            if upload is None or request.form.get("messaging_product") != "whatsapp":
                return self._error(131008, details="file and messaging_product are required")
            mime = (request.form.get("type") or upload.mimetype or "").split(";")[0].strip()
            data = upload.read()
            limit = UPLOAD_LIMITS.get(mime, DOCUMENT_LIMIT if "/" in mime else 0)
            if not data or len(data) > limit:
                return self._error(131053, details=f"{len(data)} bytes of {mime or 'no type'} is not accepted")
            return jsonify(id=self.add_media(data, mime))

        @app.get("/download/<media_id>")
        def download(media_id):
            if media_id not in self.media:
                return self._error(100, "not found", 404)
            data, mime = self.media[media_id]
            return data, 200, {"Content-Type": mime}

        @app.get("/<version>/<object_id>")
        def get_object(version, object_id):
            numbers = {n["id"]: n for waba in self.wabas.values() for n in waba["numbers"]}
            if object_id in numbers:
                return jsonify(_fields(numbers[object_id]))
            if object_id in self.wabas:
                waba, error = _waba(object_id)
                return error or jsonify(id=object_id, name=waba["name"])
            if object_id in self.media:
                data, mime = self.media[object_id]
                return jsonify(
                    id=object_id,
                    url=f"{self.url}/download/{object_id}",
                    mime_type=mime,
                    sha256=hashlib.sha256(data).hexdigest(),
                    file_size=len(data),
                    messaging_product="whatsapp",
                )
            return self._error(
                100,
                f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded "
                "due to missing permissions, or does not support this operation",
                400,
            )

        @app.get("/<version>/<waba_id>/message_templates")
        def templates(version, waba_id):
            if waba_id != self.waba_id:
                return self._error(100, "Unsupported get request")
            start = int(request.args.get("after") or 0)
            size = min(int(request.args.get("limit") or 25), self.template_page_size)
            page = self.templates[start : start + size]
            after = start + len(page)
            paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(after)}}
            if after < len(self.templates):
                paging["next"] = f"{self.url}/{version}/{waba_id}/message_templates?limit={size}&after={after}"
            return jsonify(data=page, paging=paging)

        @app.get("/<version>/<waba_id>/product_catalogs")
        def product_catalogs(version, waba_id):
            _, error = _waba(waba_id)
            if error:
                return error
            listed = [{"id": cid, "name": f"Catalog {cid}"} for cid in self.waba_catalogs.get(waba_id, [])]
            return jsonify(data=listed, paging={"cursors": {"before": "MAZDZD", "after": "MAZDZD"}})

        @app.get("/<version>/<catalog_id>/products")
        def catalog_products(version, catalog_id):
            if catalog_id not in self.catalogs:
                return self._error(
                    100,
                    f"Unsupported get request. Object with ID '{catalog_id}' does not exist, cannot be loaded due to "
                    "missing permissions, or does not support this operation",
                )
            try:
                start = int(base64.urlsafe_b64decode(request.args.get("after") or "MA==").decode())
                size = min(int(request.args.get("limit") or 25), self.catalog_page_size)
            except ValueError:
                return self._error(100, "(#100) Invalid cursor or limit")
            failure = self.catalog_failures.get(start // max(self.catalog_page_size, 1) + 1)
            if failure:
                return self._fail(failure)
            wanted = [name for name in (request.args.get("fields") or "id").split(",") if name]
            items = self.catalogs[catalog_id]
            page = [{key: item[key] for key in ["id", *wanted] if key in item} for item in items[start : start + size]]
            after = start + len(page)
            cursor = base64.urlsafe_b64encode(str(after).encode()).decode()
            before = base64.urlsafe_b64encode(str(start).encode()).decode()
            paging: dict[str, Any] = {"cursors": {"before": before, "after": cursor}}
            if after < len(items):
                paging["next"] = (
                    f"{self.url}/{version}/{catalog_id}/products?fields={','.join(wanted)}&limit={size}&after={cursor}"
                )
            return jsonify(data=page, paging=paging)

        return app

    def _handshake(self, uri: str, token: str) -> str | None:
        """Meta's GET check of a new callback URL: the verify token must be accepted and the challenge echoed."""
        target = uri
        for public, local in self.tunnels.items():
            if uri == public or uri.startswith(public + "/"):
                target = local + uri[len(public) :]
        challenge = str(next(self._ids) + 1158200000)
        try:
            response = httpx.get(
                target,
                params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": challenge},
                timeout=10,
            )
        except httpx.HTTPError as exc:
            return f"could not reach the callback URL ({type(exc).__name__})"
        if response.status_code != 200:
            return f"HTTP Status Code = {response.status_code}"
        if response.text != challenge:
            return "the callback URL did not answer the challenge"
        return None

    def _refusal(self, to: str):
        """Meta's answers that depend on the sends so far (throughput, a token revoked mid-run); under the lock."""
        if self.revoke_after is not None and len(self.sent) >= self.revoke_after:
            self.revoke_after = None
            self.expire_token()
            return self._error(190, "Error validating access token: Session has expired", 401, subcode=463)
        if self.throughput is not None:
            now = time.time()
            recent = 0
            for at in reversed(self.sent_at):
                if at < now - 1.0:
                    break
                recent += 1
            if recent >= self.throughput:
                return self._error(130429, status=400)
        return None

    def _check_template(self, kind: Any, content: Any) -> tuple[int, str] | None:
        if kind != "template" or not self.templates:
            return None
        language = (content.get("language") or {}).get("code")
        found = next(
            (t for t in self.templates if t.get("name") == content.get("name") and t.get("language") == language),
            None,
        )
        if found is None:
            return 132001, f"template name ({content.get('name')}) does not exist in {language}"
        status = str(found.get("status") or "APPROVED").upper()
        if status == "PAUSED":
            return 132015, f"template {content.get('name')} is paused for low quality"
        if status == "DISABLED":
            return 132016, f"template {content.get('name')} is disabled for low quality"
        return None

    def start(self) -> FakeGraph:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def check_content(kind: Any, content: Any) -> tuple[int, str] | None:
    """Meta's own checks on a message object; (code, details) of the error Meta would answer."""
    missing, invalid = 131008, 131009
    if kind == "contacts":
        if not isinstance(content, list) or not content:
            return missing, "contacts must be a non-empty list"
        if not all(isinstance(c, dict) and (c.get("name") or {}).get("formatted_name") for c in content):
            return missing, "contacts[].name.formatted_name is required"
        return None
    if not isinstance(content, dict):
        return missing, f"the '{kind}' object is missing"
    if kind == "text":
        body = content.get("body")
        if not isinstance(body, str) or not body:
            return missing, "text.body is required"
        if len(body) > 4096:
            return 100, "text.body is too long"
    elif kind in MEDIA_TYPES:
        if bool(content.get("id")) == bool(content.get("link")):
            return invalid, f"{kind} needs exactly one of id or link"
        if "caption" in content and kind not in ("image", "video", "document"):
            return 100, f"{kind} does not take a caption"
    elif kind == "template":
        if not content.get("name") or not (content.get("language") or {}).get("code"):
            return missing, "template.name and template.language.code are required"
    elif kind == "interactive":
        return _check_interactive(content)
    elif kind == "reaction":
        if not content.get("message_id"):
            return missing, "reaction.message_id is required"
    elif kind == "location":
        lat, lon = content.get("latitude"), content.get("longitude")
        if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)) or abs(lat) > 90 or abs(lon) > 180:
            return invalid, "location.latitude and location.longitude must be valid coordinates"
    else:
        return 131051, f"unknown message type {kind}"
    return None


def _check_interactive(content: dict[str, Any]) -> tuple[int, str] | None:
    body = (content.get("body") or {}).get("text") or ""
    if not body or len(body) > 1024:
        return 100, "interactive.body.text must be 1 to 1024 characters"
    action = content.get("action") or {}
    if content.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return 100, "interactive.action.buttons must have 1 to 3 buttons"
        if any(not 0 < len(((b or {}).get("reply") or {}).get("title") or "") <= 20 for b in buttons):
            return 100, "button titles must be 1 to 20 characters"
    elif content.get("type") == "list":
        rows = [row for section in action.get("sections") or [] for row in (section or {}).get("rows") or []]
        if not action.get("button") or len(action["button"]) > 20:
            return 100, "interactive.action.button must be 1 to 20 characters"
        if not 1 <= len(rows) <= 10:
            return 100, "a list must have 1 to 10 rows in total"
        if any(not 0 < len((row or {}).get("title") or "") <= 24 for row in rows):
            return 100, "row titles must be 1 to 24 characters"
    elif content.get("type") not in ("cta_url", "product", "product_list", "flow", "location_request_message"):
        return 100, "interactive.type is invalid"
    return None
