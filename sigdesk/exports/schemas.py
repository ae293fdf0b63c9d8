"""What the Exports page's contact picker asks and is answered (GET /admin/exports/contacts), declared once
(pydantic v2): `ui_call()` checks both and documents them with the other page calls, at /inbox/openapi.json.
"""

from __future__ import annotations


from pydantic import BaseModel, Field

from sigdesk.contacts.services import ContactData
from sigdesk.schemas import Paging, PageSize, Query, Text, limit

PICK_MAX = 100


class ContactPickQuery(Query, Paging):
    """Part of a name or number, and where the previous page ended; an empty field is a field left out."""

    q: Text = Field("", max_length=PICK_MAX, description="Part of the contact's name, number or Meta user id")
    limit: PageSize = limit(20, 50)


class ContactChoices(BaseModel):
    """A page of matching contacts, those who wrote most recently first."""

    items: list[ContactData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")
