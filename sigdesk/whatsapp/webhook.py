"""Meta's webhook, without Flask: check who sent it, answer the handshake, read the envelope.

The parser is deliberately forgiving. Meta's payloads drift (new fields, integer timestamps,
placeholders in examples, users known only by a business-scoped user_id), and a parser that raises
turns one odd field into a lost delivery. So every value is coerced or defaulted, every message
keeps its raw JSON, and only a body that is not a JSON object at all is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from collections.abc import Callable

from sigdesk.whatsapp.types import (
    INBOUND,
    OUTBOUND,
    Button,
    Content,
    Context,
    Delivery,
    Edit,
    ErrorInfo,
    Interactive,
    Location,
    Media,
    Message,
    Order,
    OrderItem,
    OtherEvent,
    Profile,
    Reaction,
    Revoke,
    SharedContacts,
    Status,
    System,
    TemplateUpdate,
    Text,
    Unsupported,
    UserPreference,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
TEMPLATE_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
        "message_template_components_update",
    }
)
# Content keys, in the order used to guess a message's type when Meta leaves `type` out.
CONTENT_KEYS = (
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "edit",
    "revoke",
    "unsupported",
)
_MAX_UNIX = 253402300799  # 9999-12-31
_INT32 = 2**31
# Escaped UTF-16 surrogates: only then can json.loads produce strings that cannot be stored.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedDelivery(ValueError):
    """The body is not a JSON object, so it cannot be a webhook delivery at all."""


# --- signature and handshake -------------------------------------------------------------------


def signature_header(app_secret: str, raw_body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta would send for these bytes (relay and tests sign with it)."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str | None, raw_body: bytes, header: str | None) -> bool:
    """HMAC-SHA256 over the exact bytes received; re-serialised JSON would not match Meta's."""
    if not app_secret or not isinstance(header, str):
        return False
    scheme, sep, digest = header.strip().partition("=")
    digest = digest.strip().lower()
    if not sep or scheme.strip().lower() != "sha256" or len(digest) != 64 or not digest.isascii():
        return False
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest)


def verify_challenge(
    mode: str | None, token: str | None, challenge: str | None, expected_token: str | None
) -> str | None:
    """The challenge to echo when Meta's handshake carries our verify token, else None."""
    if mode != "subscribe" or not expected_token or token is None or challenge is None:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), expected_token.encode("utf-8")):
        return None
    return challenge


# --- coercion ----------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _id(value: Any) -> str | None:
    """IDs arrive as strings, numbers or placeholders; an empty one means absent."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int) and value == 1)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) and value.is_integer() else None
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and -_INT32 <= value < _INT32:
        return value
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
        return number if math.isfinite(number) else None
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def timestamp(value: Any) -> datetime | None:
    """Unix seconds as string or number; anything unusable becomes None (the caller picks 'now')."""
    seconds = _float(value)
    if seconds is None or not 0 < seconds <= _MAX_UNIX:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _clean(value: Any) -> Any:
    """Replace lone surrogates (valid in JSON escapes, invalid in UTF-8) so the text can be stored."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value


def _reject_constant(_name: str) -> None:
    return None  # NaN and Infinity are not JSON; read them as null


# --- parts of a message ------------------------------------------------------------------------


def _error(value: Any) -> ErrorInfo | None:
    if not isinstance(value, dict):
        return None
    details = _text(_dict(value.get("error_data")).get("details")) or _text(value.get("details"))
    return ErrorInfo(
        code=_int(value.get("code")),
        title=_text(value.get("title")),
        message=_text(value.get("message")),
        details=details,
        href=_text(value.get("href")),
    )


def _errors(value: Any) -> tuple[ErrorInfo, ...]:
    return tuple(error for error in map(_error, _list(value)) if error is not None)


def _profile(value: dict[str, Any]) -> Profile:
    profile = _dict(value.get("profile"))
    return Profile(
        wa_id=_id(value.get("wa_id")),
        user_id=_id(value.get("user_id")),
        name=_text(profile.get("name")),
        username=_text(profile.get("username")),
        parent_user_id=_id(value.get("parent_user_id")),
    )


def match_profile(wa_id: str | None, user_id: str | None, profiles: tuple[Profile, ...]) -> Profile | None:
    """The `contacts` entry describing this sender.

    An exact id match wins. A lone entry is taken when nothing contradicts it, because Meta sends
    one entry per sender and omits `from` for users known only by user_id. A lone entry whose ids
    disagree is ignored: attaching someone else's name or user_id would merge two customers.
    """
    for profile in profiles:
        if (wa_id and profile.wa_id == wa_id) or (user_id and profile.user_id == user_id):
            return profile
    if len(profiles) == 1:
        profile = profiles[0]
        if (wa_id and profile.wa_id and profile.wa_id != wa_id) or (
            user_id and profile.user_id and profile.user_id != user_id
        ):
            return None
        return profile
    return None


def _context(value: Any) -> Context | None:
    if not isinstance(value, dict):
        return None
    product = value.get("referred_product")
    return Context(
        message_id=_id(value.get("id")),
        from_=_id(value.get("from")),
        forwarded=_bool(value.get("forwarded")),
        frequently_forwarded=_bool(value.get("frequently_forwarded")),
        referred_product=product if isinstance(product, dict) else None,
    )


def _media(kind: str, value: Any) -> Media:
    body = _dict(value)
    return Media(
        kind=kind,
        media_id=_id(body.get("id")),
        mime_type=_text(body.get("mime_type")),
        sha256=_text(body.get("sha256")),
        caption=_text(body.get("caption")),
        filename=_text(body.get("filename")),
        url=_text(body.get("url")),
        voice=_bool(body.get("voice")),
        animated=_bool(body.get("animated")),
    )


def _interactive(value: Any) -> Interactive:
    body = _dict(value)
    kind = _text(body.get("type")) or "unknown"
    sub = _dict(body.get(kind))
    if kind == "nfm_reply":
        response_json = sub.get("response_json")
        if isinstance(response_json, (dict, list)):
            response_json = dumps(response_json)
        response_json = _text(response_json)
        parsed = None
        if response_json is not None:
            try:
                parsed = json.loads(response_json, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                parsed = None
        return Interactive(
            kind=kind,
            body=_text(sub.get("body")),
            name=_text(sub.get("name")),
            response_json=response_json,
            response=_clean(parsed),
        )
    if kind == "call_permission_reply":
        return Interactive(
            kind=kind,
            permission=_text(sub.get("response")),
            permission_expires_at=timestamp(sub.get("expiration_timestamp")),
            description=_text(sub.get("response_source")),
        )
    return Interactive(
        kind=kind,
        reply_id=_id(sub.get("id")),
        title=_text(sub.get("title")),
        description=_text(sub.get("description")),
    )


def _order(value: Any) -> Order:
    body = _dict(value)
    items = tuple(
        OrderItem(
            product_retailer_id=_id(item.get("product_retailer_id")),
            quantity=_int(item.get("quantity")),
            item_price=_decimal(item.get("item_price")),
            currency=_text(item.get("currency")),
        )
        for item in _list(body.get("product_items"))
        if isinstance(item, dict)
    )
    return Order(catalog_id=_id(body.get("catalog_id")), text=_text(body.get("text")), items=items)


def _system(value: Any) -> System:
    body = _dict(value)
    return System(
        kind=_text(body.get("type")),
        body=_text(body.get("body")),
        new_wa_id=_id(body.get("wa_id")) or _id(body.get("new_wa_id")),
        new_user_id=_id(body.get("user_id")),
    )


def _content(kind: str, message: dict[str, Any]) -> Content:
    body = message.get(kind)
    if kind == "text":
        return Text(_text(_dict(body).get("body")) or "")
    if kind in MEDIA_TYPES:
        return _media(kind, body)
    if kind == "location":
        loc = _dict(body)
        return Location(
            latitude=_float(loc.get("latitude")),
            longitude=_float(loc.get("longitude")),
            name=_text(loc.get("name")),
            address=_text(loc.get("address")),
            url=_text(loc.get("url")),
        )
    if kind == "contacts":
        return SharedContacts(tuple(card for card in _list(body) if isinstance(card, dict)))
    if kind == "interactive":
        return _interactive(body) if isinstance(body, dict) else None
    if kind == "button":
        button = _dict(body)
        return Button(text=_text(button.get("text")), payload=_text(button.get("payload")))
    if kind == "reaction":
        reaction = _dict(body)
        return Reaction(message_id=_id(reaction.get("message_id")), emoji=_text(reaction.get("emoji")) or None)
    if kind == "order":
        return _order(body)
    if kind == "system":
        return _system(body)
    if kind in ("unsupported", "unknown"):
        return Unsupported(kind=_text(_dict(body).get("type")))
    if kind == "edit":
        edit = _dict(body)
        inner = _dict(edit.get("message"))
        new_type = _text(inner.get("type")) or _guess_type(inner)
        content = _content(new_type, inner) if new_type and new_type not in ("edit", "revoke") else None
        return Edit(
            original_wamid=_id(edit.get("original_message_id")),
            new_type=new_type,
            content=content,
            text=content.body if isinstance(content, Text) else None,
            caption=content.caption if isinstance(content, Media) else None,
        )
    if kind == "revoke":
        return Revoke(original_wamid=_id(_dict(body).get("original_message_id")))
    return None


def _guess_type(message: dict[str, Any]) -> str | None:
    for key in CONTENT_KEYS:
        if key in message:
            return key
    return None


# --- changes -----------------------------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.statuses: list[Status] = []
        self.profiles: list[Profile] = []
        self.templates: list[TemplateUpdate] = []
        self.preferences: list[UserPreference] = []
        self.others: list[OtherEvent] = []

    def other(
        self, field: str, value: Any, waba_id: str | None, occurred_at: datetime | None, event: str | None = None
    ) -> None:
        if event is None and isinstance(value, dict):
            event = _text(value.get("event"))
        self.others.append(
            OtherEvent(field=field, event=event, waba_id=waba_id, raw=dumps(value), occurred_at=occurred_at)
        )


def _message(
    item: dict[str, Any], profiles: tuple[Profile, ...], phone_number_id: str | None, direction: str
) -> Message | None:
    wamid = _id(item.get("id"))
    if wamid is None:
        return None
    kind = _text(item.get("type")) or _guess_type(item) or "unknown"
    if direction == INBOUND:
        wa_id, user_id = _id(item.get("from")), _id(item.get("from_user_id"))
    else:
        wa_id, user_id = _id(item.get("to")), _id(item.get("to_user_id"))
    profile = match_profile(wa_id, user_id, profiles)
    if profile is not None:
        wa_id = wa_id or profile.wa_id
        user_id = user_id or profile.user_id
    referral = item.get("referral")
    return Message(
        wamid=wamid,
        type=kind,
        timestamp=timestamp(item.get("timestamp")),
        wa_id=wa_id,
        user_id=user_id,
        profile=profile,
        content=_content(kind, item),
        raw=dumps(item),
        direction=direction,
        phone_number_id=phone_number_id,
        context=_context(item.get("context")),
        referral=referral if isinstance(referral, dict) else None,
        errors=_errors(item.get("errors")),
    )


def _status(item: dict[str, Any], phone_number_id: str | None) -> Status | None:
    wamid = _id(item.get("id"))
    status = _text(item.get("status"))
    if wamid is None or not status:
        return None
    conversation = item.get("conversation")
    pricing = item.get("pricing")
    return Status(
        wamid=wamid,
        status=status.strip().lower(),
        timestamp=timestamp(item.get("timestamp")),
        recipient_id=_id(item.get("recipient_id")),
        recipient_user_id=_id(item.get("recipient_user_id")),
        raw=dumps(item),
        errors=_errors(item.get("errors")),
        conversation=conversation if isinstance(conversation, dict) else None,
        pricing=pricing if isinstance(pricing, dict) else None,
        biz_opaque_callback_data=_text(item.get("biz_opaque_callback_data")),
        phone_number_id=phone_number_id,
    )


def _messages_change(
    out: _Builder, field: str, value: dict[str, Any], waba_id: str | None, at: datetime | None
) -> None:
    phone_number_id = _id(_dict(value.get("metadata")).get("phone_number_id"))
    profiles = tuple(_profile(item) for item in _list(value.get("contacts")) if isinstance(item, dict))
    out.profiles.extend(profiles)
    for key, direction in (("messages", INBOUND), ("message_echoes", OUTBOUND)):
        for item in _list(value.get(key)):
            message = _message(item, profiles, phone_number_id, direction) if isinstance(item, dict) else None
            if message is None:
                out.other(field, item, waba_id, at, event=f"unreadable_{key}")
            else:
                out.messages.append(message)
    for item in _list(value.get("statuses")):
        status = _status(item, phone_number_id) if isinstance(item, dict) else None
        if status is None:
            out.other(field, item, waba_id, at, event="unreadable_status")
        else:
            out.statuses.append(status)
    errors = _list(value.get("errors"))
    if errors:
        codes = ",".join(str(error.code) for error in _errors(errors) if error.code is not None)
        out.other(f"{field}.errors", errors, waba_id, at, event=codes[:64] or "error")
    if not any(key in value for key in ("messages", "message_echoes", "statuses", "errors", "contacts")):
        out.other(field, value, waba_id, at)


def _template_change(
    out: _Builder, field: str, value: dict[str, Any], waba_id: str | None, at: datetime | None
) -> None:
    reason = _text(value.get("reason"))
    out.templates.append(
        TemplateUpdate(
            field=field,
            name=_text(value.get("message_template_name")),
            language=_text(value.get("message_template_language")),
            template_id=_id(value.get("message_template_id")),
            raw=dumps(value),
            event=_text(value.get("event")),
            reason=None if reason in (None, "", "NONE") else reason,
            category=_text(value.get("new_category")) or _text(value.get("message_template_category")),
            quality=_text(value.get("new_quality_score")),
            occurred_at=at,
        )
    )


def _preferences_change(
    out: _Builder, field: str, value: dict[str, Any], waba_id: str | None, at: datetime | None
) -> None:
    profiles = tuple(_profile(item) for item in _list(value.get("contacts")) if isinstance(item, dict))
    out.profiles.extend(profiles)
    items = _list(value.get("user_preferences"))
    for item in items:
        if not isinstance(item, dict):
            out.other(field, item, waba_id, at, event="unreadable_preference")
            continue
        wa_id, user_id = _id(item.get("wa_id")), _id(item.get("user_id"))
        profile = match_profile(wa_id, user_id, profiles)
        if profile is not None:
            wa_id = wa_id or profile.wa_id
            user_id = user_id or profile.user_id
        out.preferences.append(
            UserPreference(
                wa_id=wa_id,
                user_id=user_id,
                category=_text(item.get("category")),
                value=_text(item.get("value")),
                timestamp=timestamp(item.get("timestamp")) or at,
                raw=dumps(item),
                profile=profile,
            )
        )
    if not items:
        out.other(field, value, waba_id, at)


def _other_change(out: _Builder, field: str, value: dict[str, Any], waba_id: str | None, at: datetime | None) -> None:
    event = _text(value.get("event"))
    if event is None:
        calls = _list(value.get("calls")) or _list(value.get("statuses"))
        first = calls[0] if calls and isinstance(calls[0], dict) else {}
        event = _text(first.get("event")) or _text(first.get("status"))
    out.other(field, value, waba_id, at, event=event)


Handler = Callable[[_Builder, str, dict[str, Any], "str | None", "datetime | None"], None]
HANDLERS: dict[str, Handler] = {
    "messages": _messages_change,
    "smb_message_echoes": _messages_change,
    "user_preferences": _preferences_change,
    **{name: _template_change for name in TEMPLATE_FIELDS},
}


def parse(raw_body: bytes) -> Delivery:
    """Turn a webhook body into typed events; raises MalformedDelivery only for non-objects."""
    try:
        return _parse(raw_body)
    except RecursionError as exc:
        raise MalformedDelivery("The body is nested too deeply to read") from exc


def _parse(raw_body: bytes) -> Delivery:
    try:
        data = json.loads(raw_body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedDelivery("The body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise MalformedDelivery("The body is JSON but not an object")
    if _SURROGATE_ESCAPE.search(raw_body):
        data = _clean(data)
    out = _Builder()
    for entry in _list(data.get("entry")):
        if not isinstance(entry, dict):
            out.other("unknown", entry, None, None, event="unreadable_entry")
            continue
        waba_id = _id(entry.get("id"))
        at = timestamp(entry.get("time"))
        for change in _list(entry.get("changes")):
            field = _text(change.get("field")) if isinstance(change, dict) else None
            value = change.get("value") if isinstance(change, dict) else None
            if not field or not isinstance(value, dict):
                out.other(field or "unknown", change, waba_id, at, event="unreadable_change")
                continue
            HANDLERS.get(field, _other_change)(out, field, value, waba_id, at)
    return Delivery(
        object=_text(data.get("object")),
        messages=tuple(out.messages),
        statuses=tuple(out.statuses),
        profiles=tuple(out.profiles),
        templates=tuple(out.templates),
        preferences=tuple(out.preferences),
        others=tuple(out.others),
    )
