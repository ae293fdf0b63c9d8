"""What the order panel's calls (inbox side panel, contact page, the thread's cart card) take and answer.

Declared once with `ui_call()`: a wrong shape is a 400 naming the field, and the calls are documented at
/inbox/openapi.json beside the inbox's, never in the public API. Lines are the commands' own LineIn, with
amounts as the agent typed them, so "12,50" or "-1" is refused naming the line's field ("lines.0.quantity");
the business rules (a reason for a changed price, one currency) stay with sigdesk.sales.commands.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from sigdesk.models.sales import ORDER_STATUSES
from sigdesk.sales.schemas import LineIn
from sigdesk.schemas import Id, Input, JsonId, JsonList, JsonObject, Query, Text

NOTES_MAX = 4000
Status = Literal[ORDER_STATUSES]  # type: ignore[valid-type]


class ContactPath(BaseModel):
    contact_id: Id


class MessagePath(BaseModel):
    message_id: Id


class OrderPath(BaseModel):
    order_id: Id


class PanelQuery(Query):
    conversation_id: Id | None = Field(None, description="The conversation a confirmation would go to")


class ProductQuery(Query):
    q: Text = Field("", max_length=100, description="Part of a product's SKU or name")


class ProductChoice(BaseModel):
    id: int
    sku: str
    name: str
    price: str | None
    currency: str
    placeholder: bool


class ProductChoices(BaseModel):
    items: list[ProductChoice]


class OrderForm(Input):
    lines: list[LineIn] = Field(max_length=200)
    notes: Annotated[Text, Field(max_length=NOTES_MAX)] | None = None


class StatusForm(Input):
    status: Status
    note: Annotated[Text, Field(max_length=500)] | None = None


class ConfirmationForm(Input):
    """A free-form text inside the 24-hour window, or an approved template outside it."""

    conversation_id: JsonId
    text: Annotated[Text, Field(max_length=4096)] | None = None
    template_id: JsonId | None = None
    params: dict[str, JsonList | JsonObject] | None = None


class OrderSaved(BaseModel):
    order_id: int
    number: int
    status: str
    total: str


class ConfirmationQueued(BaseModel):
    message_id: int
    status: str
    kind: Literal["text", "template"]
