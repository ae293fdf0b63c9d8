"""The one Graph API client: every call SigDesk makes to Meta goes through GraphClient.

It knows nothing of Flask or the database. The base URL is configurable so tests talk to a
local fake Graph API over real HTTP.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from sigdesk.whatsapp.errors import GraphError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
VERSION_RE = re.compile(r"^v\d{1,3}\.\d$")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
BUTTON_TITLE_MAX = 20
MAX_BUTTONS = 3
MAX_LIST_ROWS = 10
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")


class InvalidMessage(ValueError):
    """The message breaks one of WhatsApp's rules, found before calling Meta."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidMessage(message)


def validate_message(kind: str, content: dict[str, Any]) -> None:
    """Meta's documented limits, checked locally so the user hears about them at once."""
    if kind == "contacts":
        _need(isinstance(content, list) and len(content) > 0, "Send at least one contact card")
        return
    _need(isinstance(content, dict), "The message content must be an object")
    if kind == "text":
        body = content.get("body")
        _need(isinstance(body, str) and body.strip() != "", "A text message needs some text")
        _need(len(body) <= TEXT_MAX, f"A text message can have at most {TEXT_MAX} characters (this one has {len(body)})")
    elif kind in MEDIA_KINDS:
        _need(bool(content.get("id")) != bool(content.get("link")), f"A {kind} message needs exactly one of an uploaded media id or a link")
        caption = content.get("caption")
        _need(caption is None or (kind in ("image", "video", "document") and len(caption) <= CAPTION_MAX),
              f"Captions are for images, videos and documents, up to {CAPTION_MAX} characters")
    elif kind == "interactive":
        _validate_interactive(content)
    elif kind == "reaction":
        _need(bool(content.get("message_id")), "A reaction needs the message it reacts to")
        _need(isinstance(content.get("emoji", ""), str), "A reaction's emoji must be text (empty removes it)")
    elif kind == "location":
        for key, low, high in (("latitude", -90, 90), ("longitude", -180, 180)):
            value = content.get(key)
            _need(isinstance(value, (int, float)) and low <= value <= high, f"The {key} must be a number from {low} to {high}")
    elif kind == "template":
        _need(bool(content.get("name")), "A template message needs the template's name")
        _need(bool((content.get("language") or {}).get("code")), "A template message needs a language code")
        _need(isinstance(content.get("components", []), list), "Template components must be a list")
    else:
        raise InvalidMessage(f"Unknown message type '{kind}'")


def _validate_interactive(content: dict[str, Any]) -> None:
    body = (content.get("body") or {}).get("text")
    _need(isinstance(body, str) and body.strip() != "", "An interactive message needs body text")
    _need(len(body) <= INTERACTIVE_BODY_MAX, f"Interactive body text can have at most {INTERACTIVE_BODY_MAX} characters")
    action = content.get("action") or {}
    if content.get("type") == "button":
        buttons = action.get("buttons") or []
        _need(1 <= len(buttons) <= MAX_BUTTONS, f"Reply buttons: 1 to {MAX_BUTTONS}")
        for button in buttons:
            title = ((button or {}).get("reply") or {}).get("title") or ""
            _need(0 < len(title) <= BUTTON_TITLE_MAX, f"Button titles need 1 to {BUTTON_TITLE_MAX} characters ('{title}')")
    elif content.get("type") == "list":
        rows = [row for section in action.get("sections") or [] for row in (section or {}).get("rows") or []]
        _need(1 <= len(rows) <= MAX_LIST_ROWS, f"A list needs 1 to {MAX_LIST_ROWS} rows in all")
        _need(bool(action.get("button")), "A list needs the text of its button")
    else:
        raise InvalidMessage("Interactive messages are of type 'button' or 'list'")


class GraphClient:
    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        waba_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_VERSION,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/{api_version}/",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
            transport=transport,
            trust_env=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            raise GraphError(f"timed out after {self._http.timeout.read or 0:.0f} s", transport=True) from exc
        except httpx.TransportError as exc:
            raise GraphError(type(exc).__name__, transport=True) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            error = GraphError.from_response(response.status_code, body)
            log.warning("Graph API %s %s failed: HTTP %s code %s", method, path.split("?")[0], response.status_code, error.code)
            raise error
        return body

    def send_payload(self, payload: dict[str, Any]) -> str:
        """Send one message; returns its wamid. The one place outgoing messages leave SigDesk."""
        validate_message(payload.get("type", ""), payload.get(payload.get("type", ""), None))
        body = self.request("POST", f"{self.phone_number_id}/messages", json=payload)
        try:
            return str(body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GraphError("The Graph API answered without a message id", status=200) from exc

    def mark_read(self, wamid: str) -> None:
        self.request("POST", f"{self.phone_number_id}/messages",
                     json={"messaging_product": "whatsapp", "status": "read", "message_id": wamid})

    def upload_media(self, data: bytes, mime_type: str, filename: str = "file") -> str:
        body = self.request(
            "POST", f"{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        return str(body["id"])

    def media_info(self, media_id: str) -> dict[str, Any]:
        return self.request("GET", media_id)

    def download_media(self, url: str, max_bytes: int) -> bytes:
        """Media URLs live five minutes and need the same bearer token; the size cap stops a flood."""
        chunks: list[bytes] = []
        size = 0
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise GraphError(f"media download failed with HTTP {response.status_code}", status=response.status_code)
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise GraphError(f"the media file is larger than {max_bytes} bytes", status=413, code=131053)
                    chunks.append(chunk)
        except httpx.TransportError as exc:
            raise GraphError(type(exc).__name__, transport=True) from exc
        return b"".join(chunks)

    def phone_number_info(self) -> dict[str, Any]:
        return self.request("GET", self.phone_number_id, params={"fields": "display_phone_number,verified_name,quality_rating"})

    def list_templates(self) -> list[dict[str, Any]]:
        if not self.waba_id:
            raise GraphError("The WhatsApp Business Account ID is not set", code=100)
        templates: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            body = self.request("GET", f"{self.waba_id}/message_templates", params=params)
            templates.extend(body.get("data") or [])
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (body.get("paging") or {}).get("next"):
                return templates
            params = {"limit": 100, "after": after}
