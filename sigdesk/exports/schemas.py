"""What the Exports page's contact picker asks and is answered (GET /admin/exports/contacts), declared once
(pydantic v2): `ui_call()` checks both and documents them with the other page calls, at /inbox/openapi.json.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from sigdesk.contacts.services import ContactData
from sigdesk.schemas import Paging, PageSize, Text, limit

PICK_MAX = 100


class ContactPickQuery(Paging):
    """Part of a name or number, and where the previous page ended; an empty field is a field left out."""

    q: Text = Field("", max_length=PICK_MAX, description="Part of the contact's name, number or Meta user id")
    limit: PageSize = limit(20, 50)

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data


class ContactChoices(BaseModel):
    """A page of matching contacts, those who wrote most recently first."""

    items: list[ContactData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")
