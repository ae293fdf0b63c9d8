"""The contact read model: the name rule, lookups, and the one serializer the API, exports and search share.

The name rule lives here. `Contact.name` (sigdesk.models.contact) applies the same rule for templates,
since a model cannot import a feature; tests/contacts holds the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, LargeBinary, cast, func, literal, or_, select
from sqlalchemy.orm import Session, object_session

from sigdesk.contacts.phones import normalise
from sigdesk.custom_fields.services import values_for
from sigdesk.errors import NotFound, UserError
from sigdesk.lead_score.services import LeadReason, read_reasons
from sigdesk.lifecycle.services import stage_names_for, tag_names_for
from sigdesk.models import Contact
from sigdesk.paging import Cursor, Page, newest_first, page

# The columns ContactData is built from, for queries that select columns (of_row reads them by key).
COLUMNS = (
    Contact.id,
    Contact.wa_id,
    Contact.user_id,
    Contact.profile_name,
    Contact.display_name,
    Contact.opted_out_marketing,
    Contact.opted_out_changed_at,
    Contact.marketing_consent,
    Contact.created_at,
    Contact.last_inbound_at,
    Contact.email,
    Contact.company,
    Contact.city,
    Contact.country,
    Contact.language,
    Contact.notes,
    Contact.owner_id,
    Contact.updated_at,
    Contact.first_inbound_at,
    Contact.first_outbound_at,
    Contact.last_outbound_at,
    Contact.lead_score,
    Contact.lead_score_reasons,
)
_KEYS = tuple(column.key for column in COLUMNS)
# A search that could be (part of) a phone number: digits and the marks people write numbers with.
_PHONE_LIKE = re.compile(r"\+?[0-9 ()./-]+")
# From this many digits a run is in few numbers, so a phone search reads the wa_id index first; up to this
# many hits it pages by their ids (matching).
_RARE_RUN = 5
_FEW_HITS = 1000
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
    name: str = Field(description="The name SigDesk shows: the business's, else the WhatsApp profile name")
    phone: str | None = Field(description="E.164 digits without '+', as Meta's wa_id")
    wa_id: str | None
    user_id: str | None
    profile_name: str | None = Field(description="The name the customer set in WhatsApp; edits never change it")
    display_name: str | None = Field(description="The name the business gave; null shows the profile name")
    email: str | None
    company: str | None
    city: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-2 code")
    language: str | None = Field(description="Language code such as en or pt-BR")
    notes: str | None
    owner_id: int | None = Field(description="The user who looks after this customer")
    opted_out_marketing: bool
    opted_out_changed_at: datetime | None
    marketing_consent: Literal["opted_in", "opted_out", "unknown"] = Field(
        default="unknown", description="The customer's latest word on marketing messages (see its consent history)"
    )
    created_at: datetime | None
    updated_at: datetime | None = Field(description="When the record was last edited (messages do not count)")
    first_inbound_at: datetime | None
    last_inbound_at: datetime | None
    first_outbound_at: datetime | None
    last_outbound_at: datetime | None
    lead_score: int | None = Field(default=None, description="0 to 100 (see /lead-score-rules); null: not scored yet")
    lead_score_reasons: list[LeadReason] = Field(default=[], description="What makes up the lead score, in rule order")
    tags: list[str] = Field(default=[], description="The contact's tags, by name")
    stage: str | None = Field(default=None, description="The contact's lifecycle stage; null: none")
    fields: dict[str, Any] = Field(
        default={}, description="Custom fields by key (see /contact-fields); a field without a value is left out"
    )

    @classmethod
    def of(cls, contact: Contact) -> "ContactData":
        data = cls.of_row([getattr(contact, key) for key in _KEYS])
        session = object_session(contact)
        return with_tags_and_stage(session, [data])[0] if session is not None and contact.id else data

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> "ContactData":
        """From the values of COLUMNS, in order (a row of a query that selected them)."""
        values = dict(zip(_KEYS, row))
        values["opted_out_marketing"] = bool(values["opted_out_marketing"])
        values["lead_score_reasons"] = read_reasons(values["lead_score_reasons"])
        name = contact_name(
            values["id"], values["display_name"], values["profile_name"], values["wa_id"], values["user_id"]
        )
        return cls(name=name, phone=values["wa_id"], **values)


FIELDS: tuple[str, ...] = tuple(ContactData.model_fields)


def with_tags_and_stage(session: Session, contacts: list[ContactData]) -> list[ContactData]:
    """Fill in the tags, stage and custom fields of many contacts, with one query each."""
    ids = [contact.id for contact in contacts]
    tags, stages, fields = tag_names_for(session, ids), stage_names_for(session, ids), values_for(session, ids)
    for contact in contacts:
        contact.tags, contact.stage, contact.fields = tags[contact.id], stages[contact.id], fields[contact.id]
    return contacts


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


def list_contacts(
    session: Session, q: str = "", cursor: Cursor | None = None, limit: int = 50, default_country: str | None = None
) -> Page[ContactData]:
    """Contacts newest first, or those matching `q`: a name, a phone number in any format (or a run of
    its digits), an email or a company (see `matching`). `default_country` reads numbers typed without a
    prefix."""
    query = select(*COLUMNS)
    condition = matching(q, default_country, session)
    if condition is not None:
        query = query.where(condition)
    rows = session.execute(newest_first(query, Contact.created_at, Contact.id, cursor, limit)).all()
    found = page(rows, limit, lambda row: Cursor(row.created_at, row.id))
    return Page(with_tags_and_stage(session, [ContactData.of_row(row) for row in found.items]), found.next_cursor)


def matching(q: str, default_country: str | None = None, session: Session | None = None) -> ColumnElement[bool] | None:
    """Where contacts match a search; None when there is nothing to search for.

    Text is looked for inside the name, profile name, email and company. A search of only digits and the
    marks numbers are written with (at least three digits) looks for a phone number instead: the number in
    any format (normalised to E.164 with `default_country`) or a run of its digits ("5550123", "0170 123",
    leading zeros dropped so "0049 170" finds 49170...); digits do not search names or emails.

    A run of digits can sit anywhere in a number, so no index finds it. A short run (under five digits)
    is in many numbers: walking the page's order finds a page soon. A longer one is in few, and walking
    would read every contact's row to find none (p95 60 ms at 100,000 contacts on MariaDB, where 50 are
    asked; tests/perf/bench_contacts.py). Given the `session`, it first reads the ids of the numbers
    holding the run from the wa_id index alone (small, and it holds the id); when there are at most
    a thousand the condition is those ids, found by the primary key, else the walk, which then ends soon.
    """
    text = q.strip()
    if not text:
        return None
    digits = "".join(character for character in text if character.isdigit())
    if not _PHONE_LIKE.fullmatch(text):
        return or_(*_text_conditions(text))
    number: str | None
    try:
        number = normalise(text, default_country)
    except UserError:
        number = None
    exact = [Contact.wa_id == number] if number else []
    if len(digits) < 3:
        return or_(*_text_conditions(text), *exact)
    run = digits.lstrip("0") or digits
    condition = or_(Contact.wa_id.contains(run, autoescape=True), *exact)
    if session is None or len(run) < _RARE_RUN:
        return condition
    # MariaDB compares bytes with LOCATE on BINARY twice as fast as LIKE under the column's collation
    # (the run is only digits, so bytes and characters agree); SQLite's LIKE is as fast as its instr.
    holds = (
        Contact.wa_id.contains(run, autoescape=True)
        if session.get_bind().dialect.name == "sqlite"
        else func.locate(cast(literal(run), LargeBinary), Contact.wa_id) > 0
    )
    found = or_(holds, *exact)
    ids = session.scalars(select(Contact.id).where(found).limit(_FEW_HITS + 1)).all()
    return condition if len(ids) > _FEW_HITS else Contact.id.in_(ids)


def _text_conditions(text: str) -> list[ColumnElement[bool]]:
    return [
        column.contains(text, autoescape=True)
        for column in (Contact.display_name, Contact.profile_name, Contact.email, Contact.company)
    ]
