"""The one Graph API client: every call SigDesk makes to Meta goes through GraphClient.

It knows nothing of Flask or the database. The base URL is configurable so tests talk to a
local fake Graph API over real HTTP. Meta's documented limits are checked here first, so a person
hears at once what is wrong instead of after a round trip (and a rate-limit slot) to Meta.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from sigdesk.addresses import guarded_mounts, refusal, tls_context
from sigdesk.whatsapp.errors import GraphError
from sigdesk.whatsapp.media import (
    LIMITS,
    STATIC_STICKER_LIMIT,
    is_animated_webp,
    kind_for_mime,
    normalise_mime,
)

log = logging.getLogger(__name__)
SECRET_QUERY_RE = re.compile(r"(input_token|access_token)=[^&\s\"']+")


class _HideTokens(logging.Filter):
    """debug_token takes the token in its query string; httpx logs request URLs (with --verbose)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("_token=" in str(arg) for arg in record.args):
            record.args = tuple(
                SECRET_QUERY_RE.sub(r"\1=…", str(arg)) if "_token=" in str(arg) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_HideTokens())

DEFAULT_BASE_URL = "https://graph.facebook.com"
# The latest version Meta's Graph API changelog and versioning guide name (v26.0, released 2026-07-29).
DEFAULT_VERSION = "v26.0"
# Meta answers a call to a deprecated version with this header ("The call has been auto-upgraded to vX as vY
# has been deprecated"), and names the version that served every call in the second one.
VERSION_WARNING_HEADER = "x-ad-api-version-warning"
SERVED_VERSION_HEADER = "facebook-api-version"
PHONE_NUMBER_FIELDS = "id,display_phone_number,verified_name,quality_rating,messaging_limit_tier"
ID_RE = re.compile(r"^\d{1,32}$")
VERSION_RE = re.compile(r"^v\d{1,3}\.\d$")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DOWNLOAD_DEADLINE = 120.0
MAX_TEMPLATE_PAGES = 200
# A commerce catalog's items as SigDesk keeps them (Meta's ProductItem fields), a page at a time.
CATALOG_PRODUCT_FIELDS = "id,retailer_id,name,price,currency,availability,category"
CATALOG_PAGE_SIZE = 100
MAX_CATALOG_PAGES = 1000

TEXT_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
MAX_BUTTONS = 3
LIST_BUTTON_MAX = 20
MAX_SECTIONS = 10
SECTION_TITLE_MAX = 24
MAX_LIST_ROWS = 10
ROW_ID_MAX = 200
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")
KINDS = ("text", *MEDIA_KINDS, "interactive", "reaction", "location", "template", "contacts")


def _unreachable(exc: httpx.TransportError) -> GraphError:
    """A failed connection in words: the exception's class name means nothing to a shop owner, so it goes
    to the log only."""
    refused = refusal(exc)
    if refused:
        return GraphError(refused, transport=True, refused=True)
    log.warning("Graph API unreachable: %s", type(exc).__name__)
    if isinstance(exc, httpx.ProxyError):
        return GraphError("the proxy refused the connection", transport=True)
    if isinstance(exc, httpx.ConnectError):
        return GraphError("no connection could be made", transport=True)
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
        return GraphError("the connection broke off", transport=True)
    return GraphError("the connection failed", transport=True)


class InvalidMessage(ValueError):
    """The message breaks one of WhatsApp's rules, found before calling Meta."""


class InvalidMedia(InvalidMessage):
    """The file breaks WhatsApp's type or size rules for uploads."""


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidMessage(message)


def _text(value: Any, what: str, limit: int, required: bool = True) -> None:
    if value is None and not required:
        return
    _need(isinstance(value, str) and value.strip() != "", f"{what} needs some text")
    _need(len(value) <= limit, f"{what} can have at most {limit} characters (this one has {len(value)})")


def validate_message(kind: str, content: Any) -> None:
    """Meta's documented limits for one message's `type` object (a list for contacts)."""
    if kind == "contacts":
        _validate_contacts(content)
        return
    _need(kind in KINDS, f"Unknown message type '{kind}'")
    _need(isinstance(content, dict), "The message content must be an object")
    if kind == "text":
        _text(content.get("body"), "A text message", TEXT_MAX)
        _need(isinstance(content.get("preview_url", False), bool), "preview_url must be true or false")
    elif kind in MEDIA_KINDS:
        _validate_media(kind, content)
    elif kind == "interactive":
        _validate_interactive(content)
    elif kind == "reaction":
        _need(
            isinstance(content.get("message_id"), str) and content["message_id"] != "",
            "A reaction needs the message it reacts to",
        )
        _need(isinstance(content.get("emoji", ""), str), "A reaction's emoji must be text (empty removes it)")
    elif kind == "location":
        for key, low, high in (("latitude", -90, 90), ("longitude", -180, 180)):
            value = content.get(key)
            _need(
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and low <= value <= high,
                f"The {key} must be a number from {low} to {high}",
            )
        for key in ("name", "address"):
            _need(content.get(key) is None or isinstance(content[key], str), f"The location's {key} must be text")
    elif kind == "template":
        _need(
            isinstance(content.get("name"), str) and content["name"] != "",
            "A template message needs the template's name",
        )
        _need(bool((content.get("language") or {}).get("code")), "A template message needs a language code")
        components = content.get("components", [])
        _need(
            isinstance(components, list) and all(isinstance(c, dict) and c.get("type") for c in components),
            "Template components must be a list of objects, each with a type",
        )
    else:
        raise InvalidMessage(f"Unknown message type '{kind}'")


def _validate_media(kind: str, content: dict[str, Any]) -> None:
    _need(
        bool(content.get("id")) != bool(content.get("link")),
        f"A {kind} message needs exactly one of an uploaded media id or a link",
    )
    link = content.get("link")
    if link:
        _need(
            isinstance(link, str) and urlsplit(link).scheme in ("http", "https") and bool(urlsplit(link).netloc),
            f"A {kind} link must be an http(s) address",
        )
    if content.get("caption") is not None:
        _need(kind in CAPTIONED, "Captions are for images, videos and documents only")
        _text(content["caption"], "A caption", CAPTION_MAX)
    if content.get("filename") is not None:
        _need(kind == "document", "Only documents have a file name")
        _need(
            isinstance(content["filename"], str) and 0 < len(content["filename"]) <= 240,
            "The file name must be 1 to 240 characters",
        )


def _validate_contacts(content: Any) -> None:
    _need(isinstance(content, list) and len(content) > 0, "Send at least one contact card")
    for card in content:
        name = (card or {}).get("name") if isinstance(card, dict) else None
        _need(
            isinstance(name, dict) and bool(name.get("formatted_name")), "Every contact card needs name.formatted_name"
        )


def _validate_interactive(content: dict[str, Any]) -> None:
    kind = content.get("type")
    _need(kind in ("button", "list"), "Interactive messages are of type 'button' or 'list'")
    _text((content.get("body") or {}).get("text"), "An interactive message's body", INTERACTIVE_BODY_MAX)
    header = content.get("header")
    if header is not None:
        _need(isinstance(header, dict) and bool(header.get("type")), "The header must be an object with a type")
        _need(kind == "button" or header["type"] == "text", "A list message's header can only be text")
        if header["type"] == "text":
            _text(header.get("text"), "The header", HEADER_TEXT_MAX)
        else:
            _need(header["type"] in ("image", "video", "document"), "The header is text, image, video or document")
            _validate_media(header["type"], header.get(header["type"]) or {})
    if content.get("footer") is not None:
        _text((content.get("footer") or {}).get("text"), "The footer", FOOTER_MAX)
    action = content.get("action") or {}
    if kind == "button":
        buttons = action.get("buttons") or []
        _need(1 <= len(buttons) <= MAX_BUTTONS, f"Reply buttons: 1 to {MAX_BUTTONS} (this message has {len(buttons)})")
        ids, titles = [], []
        for button in buttons:
            reply = (button or {}).get("reply") or {}
            title, button_id = reply.get("title") or "", reply.get("id") or ""
            _need(
                0 < len(title) <= BUTTON_TITLE_MAX, f"Button titles need 1 to {BUTTON_TITLE_MAX} characters ('{title}')"
            )
            _need(0 < len(button_id) <= BUTTON_ID_MAX, f"Button ids need 1 to {BUTTON_ID_MAX} characters")
            ids.append(button_id)
            titles.append(title)
        _need(len(set(ids)) == len(ids) and len(set(titles)) == len(titles), "Each button needs its own id and title")
    else:
        _text(action.get("button"), "The list's button", LIST_BUTTON_MAX)
        sections = action.get("sections") or []
        _need(1 <= len(sections) <= MAX_SECTIONS, f"A list needs 1 to {MAX_SECTIONS} sections")
        rows = []
        for section in sections:
            title = (section or {}).get("title")
            _need(title is not None or len(sections) == 1, "With more than one section, every section needs a title")
            _text(title, "A section title", SECTION_TITLE_MAX, required=False)
            rows.extend((section or {}).get("rows") or [])
        _need(
            1 <= len(rows) <= MAX_LIST_ROWS, f"A list needs 1 to {MAX_LIST_ROWS} rows in all (this one has {len(rows)})"
        )
        for row in rows:
            _need(isinstance(row, dict), "Each list row must be an object with an id and a title")
            _text(row.get("title"), "A row title", ROW_TITLE_MAX)
            _need(0 < len(str(row.get("id") or "")) <= ROW_ID_MAX, f"Row ids need 1 to {ROW_ID_MAX} characters")
            _text(row.get("description"), "A row description", ROW_DESCRIPTION_MAX, required=False)
        _need(len({str(row["id"]) for row in rows}) == len(rows), "Each row needs its own id")


def validate_upload(data: bytes, mime_type: str) -> str:
    """Meta applies the size limit of the upload's MIME type (not of the later message type); returns that kind."""
    if not data:
        raise InvalidMedia("The file is empty")
    if not normalise_mime(mime_type) or "/" not in mime_type:
        raise InvalidMedia("The file's MIME type is needed, like image/jpeg")
    kind = kind_for_mime(mime_type)
    limit = LIMITS[kind]
    if kind == "sticker" and not is_animated_webp(data):
        limit = STATIC_STICKER_LIMIT
    if len(data) > limit:
        raise InvalidMedia(f"The file is {len(data):,} bytes; WhatsApp accepts at most {limit:,} bytes for {kind}s")
    return kind


def _header(header: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if header is None or isinstance(header, dict):
        return header
    return {"type": "text", "text": header}


def _rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    result = []
    for row in rows:
        if isinstance(row, dict):
            result.append(row)
        else:
            row_id, title, *rest = row
            result.append({"id": row_id, "title": title, **({"description": rest[0]} if rest and rest[0] else {})})
    return result


def _id(value: str) -> str:
    """Meta's object ids are digits; anything else must not become part of a request path."""
    if not ID_RE.match(value or ""):
        raise InvalidMessage(f"'{value}' is not a numeric ID from Meta")
    return value


NOT_CONNECTED = "WhatsApp is not connected: set the access token and phone number ID in Settings → Connection."


def send_stored(sender: Any, payload: str | None) -> str | Exception:
    """The one call to Meta for a queued message, from its stored payload: the wamid, or the error (never
    raised). The inbox's sender calls it in the server, the broadcasts' sending process in its own."""
    if sender is None:
        return ValueError(NOT_CONNECTED)
    try:
        request = json.loads(payload) if payload else None
    except ValueError:
        request = None
    if not isinstance(request, dict) or not request:
        return ValueError("The queued message is unreadable; write it again.")
    try:
        return sender.send_payload(request)
    except (GraphError, ValueError) as error:
        return error


class GraphClient:
    def __init__(
        self,
        base_url: str,
        api_version: str,
        access_token: str,
        phone_number_id: str | None = None,
        waba_id: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        connections: int = 20,
    ) -> None:
        if not VERSION_RE.match(api_version or ""):
            raise ValueError(f"'{api_version}' is not a Graph API version (like {DEFAULT_VERSION})")
        if urlsplit(base_url or "").scheme not in ("http", "https"):
            raise ValueError(f"'{base_url}' is not an http(s) address")
        if not access_token:
            raise ValueError("The access token is needed")
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self.api_version = api_version
        self.served_version: str | None = None
        self.version_warning: str | None = None
        self._token = access_token
        self._secure = urlsplit(base_url).scheme == "https"
        self._base_url, self._transport = base_url, transport
        self._forks: list[GraphClient] = []
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/{api_version}/",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            transport=transport,
            verify=tls_context(),
            # checked again as the token is sent
            mounts=None if transport is not None else guarded_mounts(connections),
            trust_env=True,
        )
        if self._http.timeout.connect is None or self._http.timeout.read is None:
            self._http.close()
            raise ValueError("Every Graph API call needs connect and read timeouts")

    def fork(self) -> "GraphClient":
        """The same client with a connection of its own, for one of a broadcast's sending threads. Threads
        sharing one pool spend more CPU than the call itself: httpcore looks at every pooled connection,
        under one lock, on each request. Closing this client closes its forks."""
        child = GraphClient(
            self._base_url,
            self.api_version,
            self._token,
            self.phone_number_id,
            self.waba_id,
            self._http.timeout,
            self._transport,
            connections=1,
        )
        self._forks.append(child)
        return child

    def recipe(self) -> dict[str, Any]:
        """What makes this client again in another process (the broadcasts' sending process): the
        constructor's arguments, the token included, for a pipe to a child, never a command line."""
        if self._transport is not None:
            raise ValueError("A client with its own transport cannot be made again elsewhere")
        timeout = self._http.timeout
        return {
            "base_url": self._base_url,
            "api_version": self.api_version,
            "access_token": self._token,
            "phone_number_id": self.phone_number_id,
            "waba_id": self.waba_id,
            "timeout": [timeout.connect, timeout.read, timeout.write, timeout.pool],
        }

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> "GraphClient":
        connect, read, write, pool = recipe["timeout"]
        options = {key: value for key, value in recipe.items() if key != "timeout"}
        return cls(**options, timeout=httpx.Timeout(connect=connect, read=read, write=write, pool=pool))

    def close(self) -> None:
        self._http.close()
        for child in self._forks:
            child.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- low level ---------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One Graph call; any failure becomes a GraphError carrying Meta's code."""
        try:
            response = self._http.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            raise GraphError(f"no answer within {self._deadline():g} s", transport=True) from exc
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
        self._note_version(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
            error = GraphError.from_response(response.status_code, body)
            log.warning(
                "Graph API %s %s failed: HTTP %s code %s", method, path.split("?")[0], response.status_code, error.code
            )
            raise error
        if not isinstance(body, dict):
            raise GraphError(
                f"The Graph API answered HTTP {response.status_code} without a JSON object", status=response.status_code
            )
        return body

    def _note_version(self, response: httpx.Response) -> None:
        """Remember what Meta says about the API version, so the WhatsApp page can warn before calls fail."""
        served = (response.headers.get(SERVED_VERSION_HEADER) or "").strip()
        warning = (response.headers.get(VERSION_WARNING_HEADER) or "").strip()
        if served:
            self.served_version = served[:20]
        if warning:
            self.version_warning = warning[:300]
        elif served and served != self.api_version and self.version_warning is None:
            self.version_warning = f"Meta answered with {served[:20]} instead of {self.api_version}."

    def _phone(self) -> str:
        if not self.phone_number_id:
            raise InvalidMessage("The phone number ID is not set (Settings → Connection)")
        return self.phone_number_id

    def _deadline(self) -> float:
        timeout = self._http.timeout
        return max(t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t is not None)

    # --- sending -----------------------------------------------------------------------------
    def send_payload(self, payload: dict[str, Any]) -> str:
        """Send one message; returns its wamid. The one place outgoing messages leave SigDesk."""
        kind = payload.get("type", "")
        validate_message(kind, payload.get(kind))
        body = self.request("POST", f"{self._phone()}/messages", json=payload)
        try:
            return str(body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GraphError("The Graph API answered without a message id", status=200) from exc

    def _send(self, to: str, kind: str, content: Any, reply_to: str | None = None) -> str:
        _need(isinstance(to, str) and to.strip() != "", "The recipient's WhatsApp number is needed")
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.strip(),
            "type": kind,
            kind: content,
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return self.send_payload(payload)

    def send_text(self, to: str, body: str, preview_url: bool = False, reply_to: str | None = None) -> str:
        return self._send(to, "text", {"body": body, "preview_url": preview_url}, reply_to)

    def send_media(
        self,
        to: str,
        kind: str,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        _need(kind in MEDIA_KINDS, f"Media messages are one of {', '.join(MEDIA_KINDS)}, not '{kind}'")
        content: dict[str, Any] = {}
        if media_id is not None:
            content["id"] = media_id
        if link is not None:
            content["link"] = link
        if caption is not None:
            content["caption"] = caption
        if filename is not None:
            content["filename"] = filename
        return self._send(to, kind, content, reply_to)

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        components: Sequence[dict[str, Any]] | None = None,
        reply_to: str | None = None,
    ) -> str:
        content: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            content["components"] = list(components)
        return self._send(to, "template", content, reply_to)

    def send_interactive_buttons(
        self,
        to: str,
        body: str,
        buttons: Sequence[tuple[str, str]],
        header: str | dict[str, Any] | None = None,
        footer: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        content: dict[str, Any] = {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": button_id, "title": title}} for button_id, title in buttons
                ]
            },
        }
        return self._send(to, "interactive", self._decorate(content, header, footer), reply_to)

    def send_interactive_list(
        self,
        to: str,
        body: str,
        button_text: str,
        sections: Sequence[dict[str, Any]],
        header: str | None = None,
        footer: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """Sections are {"title", "rows"}; rows are {"id", "title", "description"} or (id, title[, description])."""
        shaped = []
        for section in sections:
            item: dict[str, Any] = {"rows": _rows(section.get("rows") or [])}
            if section.get("title") is not None:
                item["title"] = section["title"]
            shaped.append(item)
        content = {"type": "list", "body": {"text": body}, "action": {"button": button_text, "sections": shaped}}
        return self._send(to, "interactive", self._decorate(content, header, footer), reply_to)

    @staticmethod
    def _decorate(content: dict[str, Any], header: str | dict[str, Any] | None, footer: str | None) -> dict[str, Any]:
        if header is not None:
            content["header"] = _header(header)
        if footer is not None:
            content["footer"] = {"text": footer}
        return content

    def send_reaction(self, to: str, message_id: str, emoji: str) -> str:
        return self._send(to, "reaction", {"message_id": message_id, "emoji": emoji})

    def send_location(
        self,
        to: str,
        lat: float,
        lon: float,
        name: str | None = None,
        address: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        content: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if name:
            content["name"] = name
        if address:
            content["address"] = address
        return self._send(to, "location", content, reply_to)

    def send_contacts(self, to: str, contacts: Sequence[dict[str, Any]], reply_to: str | None = None) -> str:
        return self._send(to, "contacts", list(contacts), reply_to)

    def mark_read(self, message_id: str) -> None:
        """Marks this and every earlier message in the chat read (blue ticks for the customer)."""
        _need(bool(message_id), "mark_read needs the incoming message's id")
        self.request(
            "POST",
            f"{self._phone()}/messages",
            json={"messaging_product": "whatsapp", "status": "read", "message_id": message_id},
        )

    # --- media -------------------------------------------------------------------------------
    def upload_media(self, data: bytes, mime_type: str, filename: str = "file") -> str:
        validate_upload(data, mime_type)
        body = self.request(
            "POST",
            f"{self._phone()}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename or "file", data, mime_type)},
        )
        if not body.get("id"):
            raise GraphError("The Graph API answered the upload without a media id", status=200)
        return str(body["id"])

    def media_info(self, media_id: str) -> dict[str, Any]:
        """{url, mime_type, sha256, file_size}; the URL lives five minutes."""
        _need(bool(media_id) and "/" not in media_id, "A media id is needed")
        body = self.request("GET", media_id)
        if not body.get("url"):
            raise GraphError("The Graph API answered without a download address", status=200)
        return body

    def download_media(self, url: str, max_bytes: int, deadline: float = DOWNLOAD_DEADLINE) -> bytes:
        """Same bearer token as the API; the size cap and overall deadline stop a flood or a trickle."""
        parts = urlsplit(url or "")
        allowed = ("https",) if self._secure else ("http", "https")
        if parts.scheme not in allowed or not parts.netloc:
            raise GraphError(f"refusing to send the access token to a non-{'/'.join(allowed)} address", status=400)
        chunks: list[bytes] = []
        size = 0
        ends = time.monotonic() + deadline
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise GraphError.from_response(response.status_code, body)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise GraphError(f"the media file is larger than {max_bytes} bytes", status=413, code=131053)
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise GraphError(f"the media file is larger than {max_bytes} bytes", status=413, code=131053)
                    if time.monotonic() > ends:
                        raise GraphError(f"the download took longer than {deadline:.0f} s", transport=True)
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            raise GraphError(f"no answer within {self._deadline():g} s", transport=True) from exc
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc
        return b"".join(chunks)

    # --- account -----------------------------------------------------------------------------
    def phone_number_info(self) -> dict[str, Any]:
        """display_phone_number and verified_name prove the token, the ID and the network all work."""
        return self.request("GET", self._phone(), params={"fields": PHONE_NUMBER_FIELDS})

    def debug_token(self) -> dict[str, Any]:
        """The token's own description: is_valid, expires_at (0: never), scopes, and granular_scopes naming
        the WhatsApp Business Accounts each permission covers. A system-user token may inspect itself."""
        body = self.request("GET", "debug_token", params={"input_token": self._token})
        data = body.get("data")
        if not isinstance(data, dict):
            raise GraphError("The Graph API described the token without a data object", status=200)
        return data

    def business_account(self, waba_id: str) -> dict[str, Any]:
        return self.request("GET", _id(waba_id), params={"fields": "id,name"})

    def phone_numbers(self, waba_id: str) -> list[dict[str, Any]]:
        """The WhatsApp Business Account's numbers with their name, quality rating and messaging limit tier."""
        body = self.request("GET", f"{_id(waba_id)}/phone_numbers", params={"fields": PHONE_NUMBER_FIELDS})
        return [item for item in body.get("data") or [] if isinstance(item, dict) and item.get("id")]

    def subscribe_app(self, waba_id: str, callback_url: str | None = None, verify_token: str | None = None) -> None:
        """Subscribe the app to the account's webhooks; with a callback URL and verify token, Meta first checks
        them with the GET handshake and then sends this account's webhooks there (the per-account override)."""
        data = {}
        if callback_url:
            data = {"override_callback_uri": callback_url, "verify_token": verify_token or ""}
        body = self.request("POST", f"{_id(waba_id)}/subscribed_apps", data=data)
        if body.get("success") is not True:
            raise GraphError("The Graph API did not confirm the webhook subscription", status=200)

    def subscribed_apps(self, waba_id: str) -> list[dict[str, Any]]:
        body = self.request("GET", f"{_id(waba_id)}/subscribed_apps")
        return [item for item in body.get("data") or [] if isinstance(item, dict)]

    def list_templates(self) -> list[dict[str, Any]]:
        if not self.waba_id:
            raise GraphError("The WhatsApp Business Account ID is not set", code=100)
        templates: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        seen: set[str] = set()
        for _page in range(MAX_TEMPLATE_PAGES):
            body = self.request("GET", f"{self.waba_id}/message_templates", params=params)
            templates.extend(item for item in body.get("data") or [] if isinstance(item, dict))
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not after or not paging.get("next") or after in seen:
                return templates
            seen.add(after)
            params = {"limit": 100, "after": after}
        log.warning("stopped listing templates after %s pages", MAX_TEMPLATE_PAGES)
        return templates

    # --- commerce catalog ------------------------------------------------------------------------
    def product_catalogs(self, waba_id: str | None = None) -> list[dict[str, Any]]:
        """The commerce catalogs linked to the WhatsApp Business Account (Meta links at most one today)."""
        waba = waba_id or self.waba_id
        if not waba:
            raise GraphError("The WhatsApp Business Account ID is not set", code=100)
        body = self.request("GET", f"{_id(waba)}/product_catalogs", params={"fields": "id,name"})
        return [item for item in body.get("data") or [] if isinstance(item, dict) and item.get("id")]

    def catalog_products(self, catalog_id: str, page_size: int = CATALOG_PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """The catalog's items, one list per page of Meta's cursor paging, so a caller can show progress.

        A page that repeats a cursor ends the listing (Meta's paging has looped before); a catalog longer than
        MAX_CATALOG_PAGES pages is an error rather than a silently partial listing, since a caller may act on
        what is missing from it."""
        params: dict[str, Any] = {"fields": CATALOG_PRODUCT_FIELDS, "limit": page_size}
        seen: set[str] = set()
        for _page in range(MAX_CATALOG_PAGES):
            body = self.request("GET", f"{_id(catalog_id)}/products", params=params)
            data = body.get("data", [])
            if not isinstance(data, list):
                raise GraphError("The Graph API listed the catalog without a data list", status=200)
            yield [item for item in data if isinstance(item, dict)]
            paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
            cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
            after = cursors.get("after")
            if not isinstance(after, str) or not after or not paging.get("next") or after in seen:
                return
            seen.add(after)
            params = {"fields": CATALOG_PRODUCT_FIELDS, "limit": page_size, "after": after}
        raise GraphError(f"The catalog has more than {MAX_CATALOG_PAGES} pages of products", status=200)
