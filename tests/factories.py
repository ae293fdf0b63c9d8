"""Small builders for test data, so each test names only what matters to it (after Redash's and CTFd's).

Rows: plain functions that take a session, add and flush (the caller commits), and return the row.
Webhook bodies: plain dicts shaped like Meta's deliveries; `signed` turns one into the bytes and headers
Meta would POST. Defaults are unique where the schema needs them to be.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigdesk.auth import services as accounts
from sigdesk.crypto import Cipher
from sigdesk.db import utcnow
from sigdesk.models import (
    Contact,
    Conversation,
    ConversationLabel,
    Label,
    Message,
    Note,
    Order,
    OrderLine,
    OrderStatusChange,
    Product,
    Template,
    User,
)
from sigdesk.settings import services as settings
from sigdesk.whatsapp.webhook import signature_header

PASSWORD = "correct horse battery"
APP_SECRET = "test-app-secret"
WABA_ID = "1"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550001111"
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
MIME = {
    "image": "image/jpeg",
    "video": "video/mp4",
    "audio": "audio/ogg",
    "document": "application/pdf",
    "sticker": "image/webp",
}

_serial = itertools.count(1)


def _next() -> int:
    return next(_serial)


# --- people --------------------------------------------------------------------------------------


def user(
    session: Session, role: str = "agent", email: str | None = None, name: str | None = None, password: str = PASSWORD
) -> User:
    """An owner, admin or agent who can sign in with `password`."""
    n = _next()
    return accounts.create_user(
        session, email or f"{role}{n}@example.com", name or f"{role.title()} {n}", role, password, rounds=4
    )


def api_token(session: Session, owner: User, name: str = "test") -> str:
    """A bearer token for `owner`, returned once as the API gives it."""
    return accounts.create_api_token(session, owner, name)


# --- the inbox -----------------------------------------------------------------------------------


def whatsapp_connection(session: Session, cipher: Cipher, graph_url: str, **extra: str) -> None:
    """Settings of a SigDesk connected to the fake Graph API at graph_url (extra: more settings, by key)."""
    from tests.fakes import graph

    values = {
        "whatsapp.access_token": graph.TOKEN,
        "whatsapp.phone_number_id": graph.PHONE_NUMBER_ID,
        "whatsapp.waba_id": graph.WABA_ID,
        "whatsapp.graph_base_url": graph_url,
        "whatsapp.app_secret": APP_SECRET,
        **extra,
    }
    for key, value in values.items():
        settings.set_text(session, cipher, key, value)


def contact(session: Session, wa_id: str | None = None, name: str | None = None, **fields: Any) -> Contact:
    row = Contact(wa_id=wa_id or f"1555{_next():07d}", profile_name=name, **fields)
    session.add(row)
    session.flush()
    return row


def product(
    session: Session, sku: str | None = None, name: str | None = None, price_minor: int | None = 250, **fields: Any
) -> Product:
    """A catalogue item (EUR unless `currency` says otherwise)."""
    n = _next()
    fields.setdefault("currency", "EUR")
    row = Product(sku=sku or f"SKU-{n}", name=name or f"Product {n}", price_minor=price_minor, **fields)
    session.add(row)
    session.flush()
    return row


def order(
    session: Session,
    who: Contact | None = None,
    on: date | None = None,
    lines: Sequence[tuple[Product | None, int | Decimal, int]] = (),
    status: str = "delivered",
    source: str = "import",
    **fields: Any,
) -> Order:
    """A stored order as history holds it (no command, no events): `lines` are (product or None, quantity, unit
    price in minor units); one line of 1 x 1000 by default. Its moment is noon UTC of `on` (today by default)."""
    who = who or contact(session)
    on = on or utcnow().date()
    currency = fields.pop("currency", "EUR")
    number = (session.scalar(select(func.max(Order.number))) or 1000) + 1
    row = Order(
        number=number,
        contact_id=who.id,
        status=status,
        source=source,
        currency=currency,
        ordered_at=fields.pop("ordered_at", datetime(on.year, on.month, on.day, 12, tzinfo=timezone.utc)),
        ordered_on=on,
        **fields,
    )
    session.add(row)
    session.flush()
    total = 0
    for position, (item, quantity, unit_minor) in enumerate(lines or [(None, 1, 1000)], start=1):
        line_total = int(Decimal(quantity) * unit_minor)
        total += line_total
        session.add(
            OrderLine(
                order_id=row.id,
                position=position,
                product_id=item.id if item else None,
                sku=item.sku if item else None,
                description=item.name if item else "Goods",
                quantity=Decimal(quantity),
                unit_price_minor=unit_minor,
                list_price_minor=item.price_minor if item else None,
                total_minor=line_total,
            )
        )
    session.add(OrderStatusChange(order_id=row.id, to_status=status, actor="test"))
    row.total_minor = total
    session.flush()
    return row


def conversation(session: Session, who: Contact | None = None, **fields: Any) -> Conversation:
    """A customer's one conversation; makes the contact too unless given."""
    who = who or contact(session)
    row = Conversation(contact_id=who.id, **fields)
    session.add(row)
    session.flush()
    return row


def message(
    session: Session,
    where: Conversation,
    direction: str = "in",
    type: str = "text",
    text: str | None = None,
    **fields: Any,
) -> Message:
    """A stored message of any type; media types get a media id, MIME type and sha256 unless given."""
    values: dict[str, Any] = {"wamid": f"wamid.F{_next()}", "timestamp": utcnow()}
    if type == "text":
        values["text"] = "Hello" if text is None else text
    elif text is not None:
        values["text"] = text
    if type in MEDIA_KINDS:
        values.update(
            media_id=f"media-{_next()}",
            mime_type=MIME[type],
            sha256=hashlib.sha256(b"x").hexdigest(),
            media_state="pending" if direction == "in" else None,
        )
    if direction == "out":
        values["status"] = "sent"
    values.update(fields)
    row = Message(conversation_id=where.id, contact_id=where.contact_id, direction=direction, type=type, **values)
    session.add(row)
    session.flush()
    return row


def note(
    session: Session,
    where: Conversation,
    body: str = "Called back, all fine",
    author: User | None = None,
    kind: str = "note",
) -> Note:
    row = Note(conversation_id=where.id, author_id=author.id if author else None, body=body, kind=kind)
    session.add(row)
    session.flush()
    return row


def label(session: Session, name: str | None = None, color: int = 0, on: Iterable[Conversation] = ()) -> Label:
    """A label, put on the given conversations."""
    row = Label(name=name or f"label-{_next()}", color=color)
    session.add(row)
    session.flush()
    for where in on:
        session.add(ConversationLabel(conversation_id=where.id, label_id=row.id))
    session.flush()
    return row


def template(
    session: Session,
    name: str = "order_ready",
    language: str = "en_US",
    status: str = "APPROVED",
    category: str = "UTILITY",
    body: str | None = None,
    components: Sequence[dict[str, Any]] | str | None = None,
) -> Template:
    """A synced template; `body` is a shortcut for a template with only a BODY component."""
    if components is None:
        components = [{"type": "BODY", "text": body}] if body is not None else []
    stored = components if isinstance(components, str) else json.dumps(list(components))
    row = Template(name=name, language=language, status=status, category=category, components=stored)
    session.add(row)
    session.flush()
    return row


# --- broadcasts ----------------------------------------------------------------------------------


def broadcast(
    session: Session,
    of: Template | None = None,
    to: Iterable[Contact] | dict[str, Any] = (),
    status: str = "draft",
    variables: dict[str, Any] | None = None,
    **fields: Any,
) -> Any:
    """A broadcast row as stored (no checks; the commands judge input): `of` a template (an approved utility
    one with a body "Hello {{1}}" unless given), `to` contacts (their ids) or an audience dict. Recipients
    are not frozen: use recipient(), or commands.start for a draft."""
    from sigdesk.models.broadcast import Broadcast

    of = of or template(session, name=f"broadcast_{_next()}", body="Hello {{1}}")
    if variables is None:
        variables = {"body": {"1": "{contact.name|there}"}} if "{{1}}" in (of.components or "") else {}
    audience = to if isinstance(to, dict) else {"contact_ids": [who.id for who in to]}
    fields.setdefault("name", f"Broadcast {_next()}")
    row = Broadcast(
        status=status,
        template_id=of.id,
        template_name=of.name,
        template_language=of.language,
        template_category=of.category,
        variables=json.dumps(variables),
        audience=json.dumps(audience),
        **fields,
    )
    session.add(row)
    session.flush()
    return row


def recipient(session: Session, of: Any, who: Contact | None = None, state: str = "pending", **fields: Any) -> Any:
    """One frozen recipient of broadcast `of` (a new contact unless `who` is given), numbered as the contact."""
    from sigdesk.models.broadcast import BroadcastRecipient

    who = who or contact(session)
    fields.setdefault("wa_id", who.wa_id or f"contact-{who.id}")
    row = BroadcastRecipient(broadcast_id=of.id, contact_id=who.id, state=state, **fields)
    session.add(row)
    of.recipient_count = (of.recipient_count or 0) + 1
    session.flush()
    return row


# --- Meta's webhook deliveries -------------------------------------------------------------------


def webhook(*values: dict[str, Any], waba_id: str = WABA_ID, field: str = "messages") -> dict[str, Any]:
    """The envelope: one entry with one change per value."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field, "value": value} for value in values]}],
    }


def value(
    messages: Sequence[dict[str, Any]] = (),
    statuses: Sequence[dict[str, Any]] = (),
    contacts: Sequence[dict[str, Any]] = (),
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A change's value, keys present only when they have something (as Meta sends them)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp"}
    if metadata is not None:
        body["metadata"] = metadata
    if contacts:
        body["contacts"] = list(contacts)
    if messages:
        body["messages"] = list(messages)
    if statuses:
        body["statuses"] = list(statuses)
    return body


def metadata(phone_number_id: str = PHONE_NUMBER_ID, display_phone_number: str = DISPLAY_NUMBER) -> dict[str, str]:
    return {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}


def profile(wa_id: str | None, name: str | None = None, user_id: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"profile": {"name": name}} if name else {}
    if wa_id:
        found["wa_id"] = wa_id
    if user_id:
        found["user_id"] = user_id
    return found


def _when(at: datetime | int | None) -> str:
    if isinstance(at, int):
        return str(at)
    return str(int((at or datetime.now(timezone.utc)).timestamp()))


def incoming(
    wa_id: str | None,
    kind: str,
    content: dict[str, Any],
    wamid: str | None = None,
    at: datetime | int | None = None,
    name: str | None = None,
    user_id: str | None = None,
    meta: dict[str, str] | None = None,
    waba_id: str = WABA_ID,
) -> dict[str, Any]:
    """One customer message of any kind in a whole delivery; the contact is listed when named or numbered."""
    item: dict[str, Any] = {"id": wamid or f"wamid.W{_next()}", "timestamp": _when(at), "type": kind, kind: content}
    if wa_id:
        item = {"from": wa_id, **item}
    who = profile(wa_id, name, user_id)
    return webhook(value(messages=[item], contacts=[who] if who else (), metadata=meta), waba_id=waba_id)


def text_message(wa_id: str | None, text: str = "Hello", **options: Any) -> dict[str, Any]:
    return incoming(wa_id, "text", {"body": text}, **options)


def media_message(
    wa_id: str,
    kind: str = "image",
    media_id: str | None = None,
    data: bytes = b"",
    mime_type: str | None = None,
    caption: str | None = None,
    sha256: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """An image, video, audio, document or sticker; sha256 is the hash of `data` unless given."""
    content: dict[str, Any] = {
        "id": media_id or f"media-{_next()}",
        "mime_type": mime_type or MIME[kind],
        "sha256": sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
    }
    if caption is not None:
        content["caption"] = caption
    return incoming(wa_id, kind, content, **options)


def reaction(wa_id: str, target_wamid: str, emoji: str = "👍", **options: Any) -> dict[str, Any]:
    return incoming(wa_id, "reaction", {"message_id": target_wamid, "emoji": emoji}, **options)


def cart_message(
    wa_id: str,
    items: Sequence[dict[str, Any]] = (),
    catalog_id: str = "777000111",
    text: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "catalog_id": catalog_id,
        "product_items": list(items)
        or [{"product_retailer_id": "SKU-TEA", "quantity": 1, "item_price": 4.2, "currency": "EUR"}],
    }
    if text is not None:
        content["text"] = text
    return incoming(wa_id, "order", content, **options)


def status_update(
    wamid: str,
    status: str,
    recipient_id: str,
    at: datetime | int | None = None,
    errors: list[dict[str, Any]] | None = None,
    meta: dict[str, str] | None = None,
    waba_id: str = WABA_ID,
    **extra: Any,
) -> dict[str, Any]:
    """Meta telling us what became of a message we sent (sent, delivered, read, played, failed)."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": _when(at),
        "recipient_id": recipient_id,
        **extra,
    }
    if errors:
        item["errors"] = errors
    return webhook(value(statuses=[item], metadata=meta), waba_id=waba_id)


def signed(body: dict[str, Any] | bytes, app_secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers Meta would POST for `body`, signed with the app secret."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"X-Hub-Signature-256": signature_header(app_secret, raw), "Content-Type": "application/json"}
