"""What the consent API takes and answers (pydantic v2), declared once for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sigdesk.consent.commands import CLAIMABLE_SOURCES, MAX_EVIDENCE
from sigdesk.consent.services import ConsentEventData
from sigdesk.schemas import Id, Input, Text


class ContactPath(BaseModel):
    contact_id: Id = Field(description="A contact's id")


class RecordConsent(Input):
    status: Literal["opted_in", "opted_out"] = Field(description="What the customer said")
    source: Literal[CLAIMABLE_SOURCES] = Field(  # type: ignore[valid-type]
        description="Where they said it: a form, an import, to an agent, or through your integration"
    )
    evidence: Text | None = Field(
        None, max_length=MAX_EVIDENCE, description="The exact wording, form text or keyword, as proof"
    )


class ConsentPage(BaseModel):
    """Newest word first."""

    items: list[ConsentEventData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")
