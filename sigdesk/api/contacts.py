"""The contacts part of the REST API: the record of each customer, found, read, created, edited and deleted.

The views parse, call the one command (sigdesk.contacts.commands) and answer with the one serializer
(ContactData); the commands validate every field, so the API, the pages and imports refuse alike.
"""

from __future__ import annotations

from typing import Annotated

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from sigdesk.api.views import bp
from sigdesk.contacts import commands
from sigdesk.contacts.fields import LIMITS
from sigdesk.contacts.phones import MAX_TYPED
from sigdesk.contacts.services import ContactData, get_contact
from sigdesk.openapi import operation
from sigdesk.segments.schemas import CURSOR_DESCRIPTION, ContactFilter, SortKey
from sigdesk.segments.services import MAX_SORT_CURSOR, filters_of, find_contacts
from sigdesk.schemas import Id, Input, JsonId, JsonObject, Paging, Text
from sigdesk.web import acting, db_session, requires, writing


Phone = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=MAX_TYPED,
        description="In any common format: +49 170 1234567, 0049..., or without a prefix in the default "
        "country (setting contacts.default_country)",
    ),
]
Name = Annotated[
    Text | None,
    Field(
        max_length=LIMITS["name"],
        description="The business's name for the customer; null shows their WhatsApp profile name",
    ),
]
Email = Annotated[Text | None, Field(max_length=LIMITS["email"], description="An email address")]
Company = Annotated[Text | None, Field(max_length=LIMITS["company"], description="Company")]
City = Annotated[Text | None, Field(max_length=LIMITS["city"], description="City")]
Country = Annotated[Text | None, Field(max_length=LIMITS["country"], description="ISO 3166-1 alpha-2 code, such as DE")]
Language = Annotated[
    Text | None, Field(max_length=LIMITS["language"], description="A language code such as en or pt-BR")
]
Notes = Annotated[Text | None, Field(max_length=LIMITS["notes"], description="Free notes about the customer")]
Owner = Annotated[JsonId | None, Field(description="The user who looks after this customer")]
TagNames = Annotated[
    list[Annotated[Text, Field(max_length=200)]] | None,
    Field(
        max_length=100,
        description="The contact's tags, by name (any case); exactly these. A tag not there yet is created "
        "when you may manage tags, else refused (422 naming `tags`)",
    ),
]
StageName = Annotated[
    Text | None,
    Field(max_length=200, description="A lifecycle stage's name (any case); null: none. Unknown: 422 naming `stage`"),
]
CustomFields = Annotated[
    JsonObject | None,
    Field(
        description='Custom field values by key (see /contact-fields): text, number, "YYYY-MM-DD", true/false '
        "or a list of choices; null clears one. Refusals name `fields.<key>`"
    ),
]


class ContactPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class ContactSearch(Paging, ContactFilter):
    cursor: str = Field("", max_length=MAX_SORT_CURSOR, description=CURSOR_DESCRIPTION)
    sort: SortKey = "-created_at"


class NewContact(Input):
    """A customer added by hand; fields left out stay empty."""

    model_config = ConfigDict(strict=True, extra="forbid")

    phone: Phone
    name: Name = None
    email: Email = None
    company: Company = None
    city: City = None
    country: Country = None
    language: Language = None
    notes: Notes = None
    owner_id: Owner = None
    tags: TagNames = None
    stage: StageName = None
    fields: CustomFields = None


class ContactChanges(NewContact):
    """Only the fields given change; null (or "") clears one. The phone cannot be cleared. `fields` changes
    only the custom fields it names."""

    phone: Phone | None = None


class ContactPage(BaseModel):
    """Newest first (by when SigDesk first knew the customer)."""

    items: list[ContactData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


@bp.get("/contacts")
@requires("contacts.view")
@operation("listContacts", (200, ContactPage), query=ContactSearch, errors=(404, 422))
def list_contacts_view():
    """Contacts, newest first, or those matching q, filtered and sorted

    `tag`, `stage`, `consent`, `segment` and `filter` (a filter definition as JSON, see the segments) all
    apply; a condition the filter cannot use is a 422 naming it. `sort` pages in any order it names.
    """
    query: ContactSearch = request.context.query  # type: ignore[attr-defined]
    session = db_session()
    definitions = filters_of(session, query.tag, query.stage, query.consent, query.segment, query.filter)
    found = find_contacts(session, definitions, query.q, query.sort, query.cursor or None, query.limit)
    return ContactPage(items=found.items, next_cursor=found.next_cursor)


@bp.post("/contacts")
@requires("contacts.edit")
@operation("createContact", (201, ContactData), json=NewContact, errors=(409, 422))
def create_contact():
    """Add a contact

    The phone number is stored as Meta writes it (E.164 digits without '+'); a number already on record
    is a 409 whose message names the contact that has it.
    """
    body: NewContact = request.context.json  # type: ignore[attr-defined]
    given = body.model_dump(exclude_unset=True)
    phone = given.pop("phone")
    with writing() as session:
        contact = commands.create_contact(session, acting(), phone, **given)
    return ContactData.of(contact), 201


@bp.get("/contacts/<contact_id>")
@requires("contacts.view")
@operation("getContact", (200, ContactData), path=ContactPath, errors=(404,))
def get_contact_view(contact_id: int):
    """A contact"""
    return ContactData.of(get_contact(db_session(), contact_id))


@bp.patch("/contacts/<contact_id>")
@requires("contacts.edit")
@operation("updateContact", (200, ContactData), path=ContactPath, json=ContactChanges, errors=(404, 409, 422))
def update_contact(contact_id: int):
    """Change some of a contact's fields"""
    body: ContactChanges = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        contact = commands.update_contact(session, acting(), contact_id, body.model_dump(exclude_unset=True))
    return ContactData.of(contact)


@bp.delete("/contacts/<contact_id>")
@requires("contacts.delete")
@operation("deleteContact", (204, None), path=ContactPath, errors=(404, 422))
def delete_contact(contact_id: int):
    """Delete a contact who has no conversations (admins)

    A contact with conversations is refused (422): anonymise them instead, which keeps the history.
    """
    with writing() as session:
        commands.delete_contact(session, acting(), contact_id)
    return "", 204
