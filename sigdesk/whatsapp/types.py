"""Typed, immutable views of what Meta's webhooks deliver.

Every event keeps the JSON it came from (`raw`), so a field SigDesk does not model yet is never
lost; the typed fields are the ones the inbox and the ingest logic rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

INBOUND = "in"
OUTBOUND = "out"


@dataclass(frozen=True)
class ErrorInfo:
    code: int | None
    title: str | None = None
    message: str | None = None
    details: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class Profile:
    """One entry of `value.contacts`: who a message or status is about."""

    wa_id: str | None
    user_id: str | None
    name: str | None = None
    username: str | None = None
    parent_user_id: str | None = None


@dataclass(frozen=True)
class Context:
    """Marks replies (`message_id`), forwards and questions about a catalogue product."""

    message_id: str | None = None
    from_: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, Any] | None = None


@dataclass(frozen=True)
class Text:
    body: str


@dataclass(frozen=True)
class Media:
    """image, video, audio, document or sticker; `voice` and `animated` only apply to some."""

    kind: str
    media_id: str | None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool = False
    animated: bool = False


@dataclass(frozen=True)
class Location:
    latitude: float | None
    longitude: float | None
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class SharedContacts:
    """vCards the customer shared; kept as Meta's objects because their shape is wide."""

    cards: tuple[dict[str, Any], ...]

    @property
    def names(self) -> tuple[str, ...]:
        found = []
        for card in self.cards:
            name = card.get("name")
            if isinstance(name, dict) and isinstance(name.get("formatted_name"), str):
                found.append(name["formatted_name"])
        return tuple(found)


@dataclass(frozen=True)
class Interactive:
    """A reply to an interactive message; `kind` is Meta's sub-type (button_reply, nfm_reply, ...).

    For flows (`nfm_reply`) Meta sends the answers as a JSON *string*; `response_json` keeps that
    string untouched and `response` holds it parsed, or None when it is not valid JSON.
    """

    kind: str
    reply_id: str | None = None
    title: str | None = None
    description: str | None = None
    body: str | None = None
    name: str | None = None
    response_json: str | None = None
    response: Any = None
    permission: str | None = None
    permission_expires_at: datetime | None = None


@dataclass(frozen=True)
class Button:
    """A tap on a template's quick-reply button."""

    text: str | None
    payload: str | None


@dataclass(frozen=True)
class Reaction:
    """An emoji on `message_id`; `emoji` None means the customer took the reaction back."""

    message_id: str | None
    emoji: str | None

    @property
    def removed(self) -> bool:
        return self.emoji is None


@dataclass(frozen=True)
class OrderItem:
    product_retailer_id: str | None
    quantity: int | None
    item_price: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Order:
    catalog_id: str | None
    text: str | None
    items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class System:
    """Meta's notices about the customer (changed number, identity change, ...)."""

    kind: str | None
    body: str | None
    new_wa_id: str | None = None
    new_user_id: str | None = None


@dataclass(frozen=True)
class Unsupported:
    """A message Meta could not hand over (types `unsupported` and the older `unknown`)."""

    kind: str | None


@dataclass(frozen=True)
class Edit:
    """The customer edited `original_wamid`; `content` is the new version."""

    original_wamid: str | None
    new_type: str | None
    content: Any = None
    text: str | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Revoke:
    original_wamid: str | None


Content = (
    Text
    | Media
    | Location
    | SharedContacts
    | Interactive
    | Button
    | Reaction
    | Order
    | System
    | Unsupported
    | Edit
    | Revoke
    | None
)


@dataclass(frozen=True)
class Message:
    """One message: inbound from a customer, or outbound when Meta echoes the business app."""

    wamid: str
    type: str
    timestamp: datetime | None
    wa_id: str | None
    user_id: str | None
    profile: Profile | None
    content: Content
    raw: str
    direction: str = INBOUND
    phone_number_id: str | None = None
    context: Context | None = None
    referral: dict[str, Any] | None = None
    errors: tuple[ErrorInfo, ...] = ()

    @property
    def text(self) -> str | None:
        """What the inbox shows as the message's words, whatever the type."""
        content = self.content
        if isinstance(content, Text):
            return content.body
        if isinstance(content, Button):
            return content.text
        if isinstance(content, Interactive):
            return content.title or content.body
        if isinstance(content, System):
            return content.body
        if isinstance(content, Order):
            return content.text
        if isinstance(content, Edit):
            return content.text
        return None

    @property
    def caption(self) -> str | None:
        return self.content.caption if isinstance(self.content, Media) else None


@dataclass(frozen=True)
class Status:
    """Meta's report on a message the business sent; statuses reuse that message's wamid."""

    wamid: str
    status: str
    timestamp: datetime | None
    recipient_id: str | None
    raw: str
    recipient_user_id: str | None = None
    errors: tuple[ErrorInfo, ...] = ()
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    biz_opaque_callback_data: str | None = None
    phone_number_id: str | None = None


@dataclass(frozen=True)
class TemplateUpdate:
    """message_template_status_update / _quality_update / template_category_update / _components_update."""

    field: str
    name: str | None
    language: str | None
    template_id: str | None
    raw: str
    event: str | None = None
    reason: str | None = None
    category: str | None = None
    quality: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class UserPreference:
    """A customer stopped or resumed marketing messages (or signed up for them)."""

    wa_id: str | None
    user_id: str | None
    category: str | None
    value: str | None
    timestamp: datetime | None
    raw: str
    profile: Profile | None = None

    @property
    def marketing_opt_out(self) -> bool | None:
        """True to stop, False to resume, None when this says nothing about marketing."""
        if (self.category or "marketing_messages") != "marketing_messages":
            return None
        return {"stop": True, "resume": False, "signup": False}.get((self.value or "").lower())


@dataclass(frozen=True)
class OtherEvent:
    """Anything else (account_update, calls, echoes of unknown shape, value.errors): kept for admins."""

    field: str
    event: str | None
    waba_id: str | None
    raw: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    """One webhook POST body, flattened across its entries and changes."""

    object: str | None
    messages: tuple[Message, ...] = ()
    statuses: tuple[Status, ...] = ()
    profiles: tuple[Profile, ...] = ()
    templates: tuple[TemplateUpdate, ...] = ()
    preferences: tuple[UserPreference, ...] = ()
    others: tuple[OtherEvent, ...] = field(default=())

    @property
    def event_count(self) -> int:
        return len(self.messages) + len(self.statuses) + len(self.templates) + len(self.preferences) + len(self.others)
