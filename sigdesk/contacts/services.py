"""The contact read model: the name rule, lookups, and the one serializer the API, exports and search share.

The name rule lives here. `Contact.name` (sigdesk.models.contact) applies the same rule for templates,
since a model cannot import a feature; tests/contacts holds the two to the same answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.errors import NotFound
from sigdesk.models import Contact

# The columns ContactData is built from, in its field order (after `name`), for queries that select columns.
COLUMNS = (
    Contact.id,
    Contact.wa_id,
    Contact.user_id,
    Contact.profile_name,
    Contact.display_name,
    Contact.opted_out_marketing,
    Contact.opted_out_changed_at,
    Contact.created_at,
    Contact.last_inbound_at,
)
NAME_COLUMNS = (Contact.id, Contact.display_name, Contact.profile_name, Contact.wa_id, Contact.user_id)


def contact_name(
    contact_id: int, display_name: str | None, profile_name: str | None, wa_id: str | None, user_id: str | None
) -> str:
    """Which name a contact shows: the one the business gave, else the one the customer set in WhatsApp,
    else their number or Meta's user id, else a placeholder that still tells contacts apart."""
    return display_name or profile_name or wa_id or user_id or f"Contact {contact_id}"


def name_of(contact: Contact) -> str:
    return contact_name(contact.id, contact.display_name, contact.profile_name, contact.wa_id, contact.user_id)


class ContactData(BaseModel):
    """A contact as every reader outside the inbox sees it: the API, the exports and search."""

    id: int
    name: str
    wa_id: str | None
    user_id: str | None
    profile_name: str | None
    display_name: str | None
    opted_out_marketing: bool
    opted_out_changed_at: datetime | None
    created_at: datetime | None
    last_inbound_at: datetime | None

    @classmethod
    def of(cls, contact: Contact) -> "ContactData":
        return cls.of_row([getattr(contact, column.key) for column in COLUMNS])

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> "ContactData":
        """From the values of COLUMNS, in order (a row of a query that selected them)."""
        contact_id, wa_id, user_id, profile_name, display_name, opted_out, changed_at, created_at, seen_at = row[:9]
        return cls(
            id=contact_id,
            name=contact_name(contact_id, display_name, profile_name, wa_id, user_id),
            wa_id=wa_id,
            user_id=user_id,
            profile_name=profile_name,
            display_name=display_name,
            opted_out_marketing=bool(opted_out),
            opted_out_changed_at=changed_at,
            created_at=created_at,
            last_inbound_at=seen_at,
        )


FIELDS: tuple[str, ...] = tuple(ContactData.model_fields)


def get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}", field="contact_id")
    return contact


def find_contact(session: Session, wa_id: str | None = None, user_id: str | None = None) -> Contact | None:
    """The contact Meta knows by this phone number or business-scoped user id, if SigDesk has met them."""
    if wa_id:
        found = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if found is not None:
            return found
    if user_id:
        return session.scalar(select(Contact).where(Contact.user_id == user_id))
    return None
