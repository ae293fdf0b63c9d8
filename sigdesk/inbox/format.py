"""Turning stored messages into what the inbox shows: WhatsApp formatting, ticks, cards per message type.

Everything here escapes first and formats second, so nothing a customer writes can become markup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

from sigdesk.db import read_json
from sigdesk.models import Message

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")

_TOKENS = re.compile(
    r"```(?P<block>.+?)```"
    r"|`(?P<code>[^`\n]+)`"
    r"|(?P<url>\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]}*_~])",
    re.DOTALL,
)
# Markers need a non-space just inside and no word character just outside, as in WhatsApp;
# the inner text may not contain '<', so formats nest but never overlap into broken tags.
_INLINE = [
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n<]+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n<]+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n<]+?)(?<=\S)~(?![\w~])"), "s"),
]


def whatsapp(text: str | None) -> Markup:
    """*bold*, _italic_, ~strike~, ```mono``` and `code`, and http(s) links; all else escaped."""
    if not text:
        return Markup("")
    out: list[str] = []
    position = 0
    for match in _TOKENS.finditer(text):
        out.append(_inline(text[position : match.start()]))
        if match.group("block") is not None:
            out.append(f'<code class="mono">{escape(match.group("block"))}</code>')
        elif match.group("code") is not None:
            out.append(f"<code>{escape(match.group('code'))}</code>")
        else:
            url = escape(match.group("url"))
            out.append(f'<a href="{url}" target="_blank" rel="noopener noreferrer nofollow">{url}</a>')
        position = match.end()
    out.append(_inline(text[position:]))
    return Markup("".join(out))


def _inline(text: str) -> str:
    html = str(escape(text))
    for pattern, tag in _INLINE:
        html = pattern.sub(lambda match, tag=tag: f"<{tag}>{match.group(1)}</{tag}>", html)
    return html


_PLAIN = [
    re.compile(r"```(.+?)```"),
    re.compile(r"`([^`]+)`"),
    *(re.compile(rf"(?<![\w{m}]){m}(?=\S)([^{m}]+?)(?<=\S){m}(?![\w{m}])") for m in (r"\*", "_", "~")),
]


def plain(text: str | None, limit: int = 90) -> str:
    """A one-line preview: formatting markers and line breaks removed; a lone `_` (order_ready) stays."""
    if not text:
        return ""
    flat = " ".join(text.split())
    for pattern in _PLAIN:
        flat = pattern.sub(r"\1", flat)
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def initials(name: str | None) -> str:
    words = [word for word in re.split(r"[\s\-_.]+", name or "") if word]
    if not words:
        return "?"
    if words[0].lstrip("+").isdigit():
        return words[-1][-2:]
    letters = [word[0] for word in words if word[0].isalnum()][:2]
    return "".join(letters).upper() or "?"


def safe_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def size_text(size: int | None) -> str:
    if not size:
        return ""
    for unit, step in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= step:
            return f"{size / step:.1f} {unit}"
    return f"{size} B"


# --- ticks -------------------------------------------------------------------------------------

TICKS = {
    "queued": ("🕓", "queued", "Waiting to be sent"),
    "sending": ("🕓", "queued", "Sending"),
    "sent": ("✓", "sent", "Sent"),
    "delivered": ("✓✓", "delivered", "Delivered"),
    "read": ("✓✓", "read", "Read"),
    "played": ("✓✓", "read", "Played"),
    "failed": ("!", "failed", "Failed"),
}


def tick(message: Message) -> tuple[str, str, str] | None:
    """(symbol, css class, words) for an outgoing message's delivery state."""
    if message.direction != "out" or not message.status:
        return None
    symbol, css, words = TICKS.get(message.status, ("", "", message.status))
    if message.status == "failed":
        words = "Not delivered: " + (message.error_explanation or message.error_title or "WhatsApp gave no reason")
    return symbol, css, words


# --- message cards -----------------------------------------------------------------------------


@dataclass
class Card:
    """What the thread template needs about one message, whatever its type and direction."""

    kind: str
    text: str | None = None
    caption: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def details_of(message: Message) -> dict[str, Any]:
    """The message's stored details as a dict (read_json's policy: anything unreadable is empty)."""
    return read_json(message.details, dict, "messages.details")


def card(message: Message, template_text: str | None = None) -> Card:
    """Normalise inbound details (keyed by type) and outbound ones (Meta's send object) into one shape."""
    details = details_of(message)
    ours = message.payload is not None  # sent through SigDesk: details hold what we sent
    kind = message.type
    part = details if ours else details.get(kind) if isinstance(details.get(kind), dict) else {}
    if message.revoked_at is not None:
        return Card("revoked")
    if kind == "text":
        return Card("text", text=message.text)
    if kind in MEDIA_TYPES:
        return Card(
            "media",
            caption=message.caption,
            data={
                "media_kind": kind,
                "voice": bool(part.get("voice")),
                "animated": bool(part.get("animated")),
                "filename": message.filename or part.get("filename"),
                "mime": message.mime_type,
                "size": size_text(message.file_size),
                "state": message.media_state,
                "ready": bool(message.storage_key),
                "problem": message.error_explanation if message.media_state in ("failed", "quarantined") else None,
            },
        )
    if kind == "location":
        latitude, longitude = _number(part.get("latitude")), _number(part.get("longitude"))
        return Card(
            "location",
            data={
                "latitude": latitude,
                "longitude": longitude,
                "name": part.get("name"),
                "address": part.get("address"),
                "url": safe_url(part.get("url")),
                "map": (
                    f"https://www.openstreetmap.org/?mlat={latitude}&mlon={longitude}#map=17/{latitude}/{longitude}"
                    if latitude is not None and longitude is not None
                    else None
                ),
            },
        )
    if kind == "contacts":
        raw = details.get("contacts")
        cards = raw if isinstance(raw, list) else raw.get("cards") if isinstance(raw, dict) else []
        return Card("contacts", data={"cards": [_vcard(item) for item in cards or [] if isinstance(item, dict)]})
    if kind == "interactive":
        return _interactive(message, part, ours)
    if kind == "button":
        return Card("button", text=part.get("text") or message.text, data={"payload": part.get("payload")})
    if kind == "order":
        return Card("order", text=part.get("text") or message.text, data=_order(part))
    if kind == "template":
        filled = message.text if message.text and message.text != f"[template {details.get('name')}]" else None
        return Card(
            "template",
            text=filled or template_text,
            data={
                "name": details.get("name"),
                "language": (details.get("language") or {}).get("code"),
                "params": [
                    str(item.get("text", ""))
                    for component in details.get("components") or []
                    if isinstance(component, dict)
                    for item in component.get("parameters") or []
                    if isinstance(item, dict)
                ],
            },
        )
    if kind == "system":
        return Card("system", text=message.text or part.get("body"))
    if kind in ("unsupported", "unknown"):
        errors = details.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        return Card(
            "unsupported", data={"subtype": part.get("kind"), "reason": first.get("details") or first.get("title")}
        )
    return Card("unsupported", text=message.text, data={"subtype": kind})


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is not a coordinate


def _vcard(item: dict[str, Any]) -> dict[str, Any]:
    name = item.get("name") if isinstance(item.get("name"), dict) else {}
    org = item.get("org") if isinstance(item.get("org"), dict) else {}
    return {
        "name": name.get("formatted_name")
        or " ".join(filter(None, (name.get("first_name"), name.get("last_name"))))
        or "Contact",
        "phones": [
            (p.get("phone"), p.get("wa_id"), p.get("type")) for p in item.get("phones") or [] if isinstance(p, dict)
        ],
        "emails": [e.get("email") for e in item.get("emails") or [] if isinstance(e, dict) and e.get("email")],
        "org": " · ".join(filter(None, (org.get("company"), org.get("title")))),
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _words(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sent_interactive(part: dict[str, Any]) -> Card:
    """What the customer saw of a sent button or list message: header, body, footer and every label."""
    header = _dict(part.get("header"))
    header_kind = header.get("type") if isinstance(header.get("type"), str) else None
    action = _dict(part.get("action"))
    buttons = [_words(_dict(_dict(button).get("reply")).get("title")) for button in _list(action.get("buttons"))]
    sections = [
        {
            "title": _words(_dict(section).get("title")),
            "rows": [
                {"title": _words(_dict(row).get("title")), "description": _words(_dict(row).get("description"))}
                for row in _list(_dict(section).get("rows"))
                if _words(_dict(row).get("title"))
            ],
        }
        for section in _list(action.get("sections"))
    ]
    parameters = _dict(action.get("parameters"))
    return Card(
        "interactive_sent",
        text=_words(_dict(part.get("body")).get("text")),
        data={
            "subtype": part.get("type"),
            "header": _words(header.get("text")) if header_kind == "text" else None,
            "header_media": header_kind if header_kind in MEDIA_TYPES else None,
            "footer": _words(_dict(part.get("footer")).get("text")),
            "buttons": [title for title in buttons if title],
            "list_button": _words(action.get("button")),
            "sections": [section for section in sections if section["rows"] or section["title"]],
            "link_text": _words(parameters.get("display_text")),
            "link": safe_url(parameters.get("url")),
        },
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _interactive(message: Message, part: dict[str, Any], ours: bool) -> Card:
    if ours:
        return _sent_interactive(part)
    sub = part.get("kind")
    data: dict[str, Any] = {
        "subtype": sub,
        "title": part.get("title"),
        "description": part.get("description"),
        "reply_id": part.get("reply_id"),
    }
    if sub == "nfm_reply":
        response = part.get("response")
        if isinstance(response, dict):
            data["answers"] = [
                (str(key), json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value)
                for key, value in response.items()
                if key != "flow_token"
            ]
        else:
            data["raw"] = part.get("response_json")
        data["title"] = part.get("body") or part.get("name")
    if sub == "call_permission_reply":
        data["permission"] = part.get("permission")
        data["expires"] = part.get("permission_expires_at")
    return Card("interactive", text=message.text, data=data)


def _order(part: dict[str, Any]) -> dict[str, Any]:
    items, totals = [], {}
    for item in part.get("items") or []:
        if not isinstance(item, dict):
            continue
        try:
            price = Decimal(str(item.get("item_price")))
            quantity = int(item.get("quantity") or 0)
        except (InvalidOperation, TypeError, ValueError):
            price, quantity = None, item.get("quantity")
        currency = item.get("currency") or ""
        line = price * quantity if price is not None and isinstance(quantity, int) else None
        if line is not None:
            totals[currency] = totals.get(currency, Decimal(0)) + line
        items.append(
            {
                "sku": item.get("product_retailer_id"),
                "quantity": quantity,
                "price": _money(price),
                "currency": currency,
                "line": _money(line),
            }
        )
    return {
        "catalog_id": part.get("catalog_id"),
        "items": items,
        "totals": [(currency, _money(total)) for currency, total in sorted(totals.items())],
    }


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value.quantize(Decimal('0.01')):,}"


def referral(message: Message) -> dict[str, Any] | None:
    ref = details_of(message).get("referral")
    if not isinstance(ref, dict):
        return None
    return {
        "headline": ref.get("headline"),
        "body": ref.get("body"),
        "source_type": ref.get("source_type"),
        "source_url": safe_url(ref.get("source_url")),
    }


def referred_product(message: Message) -> dict[str, Any] | None:
    context = details_of(message).get("context")
    product = context.get("referred_product") if isinstance(context, dict) else None
    return product if isinstance(product, dict) else None


def edited_from(message: Message) -> str | None:
    original = details_of(message).get("original")
    if message.edited_at is None or not isinstance(original, dict):
        return None
    return original.get("text") or original.get("caption")


def quote_text(message: Message | None) -> str:
    if message is None:
        return "A message that is not in SigDesk"
    if message.revoked_at is not None:
        return "Deleted message"
    return plain(message.text or message.caption or message.filename, 120) or f"[{message.type}]"


def preview_text(kind: str, text: str | None, revoked: bool) -> str:
    if revoked:
        return "🚫 Deleted message"
    labels = {
        "image": "📷 Photo",
        "video": "🎥 Video",
        "audio": "🎤 Audio",
        "document": "📄 Document",
        "sticker": "Sticker",
        "location": "📍 Location",
        "contacts": "👤 Contact",
        "order": "🛒 Order",
        "template": "Template",
        "interactive": "Reply",
        "button": "Button",
        "unsupported": "Unsupported message",
        "unknown": "Unsupported message",
    }
    words = plain(text)
    label = labels.get(kind)
    if label and words and kind != "template":
        return f"{label}: {words}"
    return words or label or kind


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
