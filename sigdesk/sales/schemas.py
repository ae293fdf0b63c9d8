"""What the sales commands and the API take, declared once (pydantic v2).

Amounts and quantities arrive as JSON numbers or as text ("12.50"); both become Decimal without passing
through a float's rounding, and the commands judge them against the currency (sigdesk.sales.money), so a
Python caller, the API and the pages are refused in the same words, naming the field ("lines.0.quantity").
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from sigdesk.models.sales import ORDER_STATUSES
from sigdesk.schemas import Id, Input, JsonId, Paging, Query, QueryDay, Text

SKU_MAX = 100
NAME_MAX = 255
CATEGORY_MAX = 100
REASON_MAX = 255
NOTES_MAX = 4000
REF_MAX = 100
CATALOG_ID_MAX = 64
STATUS_NOTE_MAX = 500
# The longest amount or quantity as text: enough for any real price, short enough to parse cheaply.
NUMBER_TEXT_MAX = 40
# Numeric(12, 3): up to 999,999,999.999 units, three decimals.
MAX_QUANTITY = Decimal("999999999.999")
QUANTITY_DECIMALS = 3
MOMENT_TEXT_MAX = 40


def _decimal(value: Any) -> Decimal:
    """A JSON number, a Decimal or text such as "12.50"; a float goes through its shortest text (0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise PydanticCustomError("decimal", "must be a number such as 12.50")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str) and len(value) <= NUMBER_TEXT_MAX:
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise PydanticCustomError("decimal", "must be a number such as 12.50") from None
    else:
        raise PydanticCustomError("decimal", "must be a number such as 12.50")
    if not result.is_finite():
        raise PydanticCustomError("decimal", "must be a number such as 12.50")
    return result


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


_NUMBER_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "maxLength": NUMBER_TEXT_MAX}]}
Amount = Annotated[Decimal, PlainValidator(_decimal), WithJsonSchema(_NUMBER_SCHEMA)]
OptionalAmount = Annotated[
    Decimal | None,
    PlainValidator(_optional_decimal),
    WithJsonSchema({"anyOf": [*_NUMBER_SCHEMA["anyOf"], {"type": "null"}]}),
]


def moment_value(value: date | datetime | str) -> date | datetime:
    """What an order's date says, before the business time zone gives it a moment: a date alone (2026-01-31,
    2026/01/31) stays a date; a date and time (2026-01-31T09:00, 2026-01-31 09:00, with or without a zone,
    Z for UTC) a datetime, naive when no zone is given. Raises ValueError. Callers want
    sigdesk.sales.commands.order_moment, which gives the moment and the day."""
    if isinstance(value, datetime | date):
        return value
    if not isinstance(value, str) or len(value) > MOMENT_TEXT_MAX:
        raise ValueError("not a date")
    text = value.strip()
    if len(text) == 10 and text[4:5] == "/" and text[7:8] == "/":
        text = text.replace("/", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text)


def _moment(value: Any) -> date | datetime | None:
    """Checks the shape only: which moment a date or a naive date and time is depends on the business time
    zone, which the command reads (sigdesk.sales.commands.order_moment)."""
    if value is None:
        return None
    try:
        return moment_value(value)
    except (ValueError, TypeError):
        raise PydanticCustomError(
            "datetime", "must be a date like 2026-01-31 or a date and time like 2026-01-31T09:00Z"
        ) from None


def _quantity(value: Any) -> Decimal:
    """A number no line can hold is refused here already; "more than 0" and the decimals are the command's
    to judge (sigdesk.sales.commands.parse_quantity), so the API names `lines.N.quantity` for them."""
    result = _decimal(value)
    if result > MAX_QUANTITY:
        raise PydanticCustomError("decimal", "must be at most {maximum}", {"maximum": str(MAX_QUANTITY)})
    return result


Quantity = Annotated[
    Decimal,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "maximum": float(MAX_QUANTITY)},
                {"type": "string", "maxLength": NUMBER_TEXT_MAX},
            ]
        }
    ),
]


Moment = Annotated[
    date | datetime | None,
    PlainValidator(_moment),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
                {"type": "null"},
            ],
            "description": "A date alone is its start (midnight) in the business time zone (Settings → General); "
            "a date and time without a zone is that wall clock time in the business time zone",
        }
    ),
]


class LineIn(BaseModel):
    """One line of an order: a product (by id, or by sku) or free text, a quantity and a unit price.

    `unit_price` left out (null) is the product's price; a different price needs `price_reason`. A line
    without a product needs a `description` and a `unit_price`. `currency`, when given, must be the
    order's (a line in another currency is refused, never converted).
    """

    model_config = ConfigDict(extra="forbid")

    product_id: JsonId | None = Field(None, description="A product's id")
    sku: Annotated[Text, Field(max_length=SKU_MAX)] | None = Field(
        None, description="A product's SKU (Meta's product_retailer_id), when product_id is not given"
    )
    description: Annotated[Text, Field(max_length=NAME_MAX)] | None = Field(
        None, description="What was sold, for a line without a product; defaults to the product's name"
    )
    quantity: Quantity = Field(description="More than 0, at most 999999999.999; up to 3 decimals (1.5 kg)")
    unit_price: OptionalAmount = Field(
        None, description="Price of one unit in the order's currency, in major units (12.50); null: the product's"
    )
    price_reason: Annotated[Text, Field(max_length=REASON_MAX)] | None = Field(
        None, description="Why the unit price differs from the product's price (required then)"
    )
    currency: Annotated[Text, Field(max_length=3)] | None = Field(
        None, description="The line's currency; it must be the order's (null: the order's)"
    )


# --- products --------------------------------------------------------------------------------------

Sku = Annotated[Text, Field(min_length=1, max_length=SKU_MAX, description="Meta's product_retailer_id")]
ProductName = Annotated[Text, Field(min_length=1, max_length=NAME_MAX)]
Category = Annotated[Text | None, Field(max_length=CATEGORY_MAX)]
Currency = Annotated[
    Text | None, Field(max_length=3, description="ISO 4217 code such as EUR; null: setting sales.currency")
]
ReorderDays = Annotated[
    int | None, Field(ge=1, le=3650, description="The typical days between two purchases of it; null: learnt")
]
CatalogId = Annotated[Text | None, Field(max_length=CATALOG_ID_MAX, description="The product's id in Meta's catalog")]


class NewProduct(Input):
    """A catalogue item; `price` in major units (12.50), as a number or text."""

    model_config = ConfigDict(strict=True, extra="forbid")

    sku: Sku
    name: ProductName
    price: OptionalAmount = None
    currency: Currency = None
    category: Category = None
    active: bool = True
    reorder_days: ReorderDays = None
    catalog_product_id: CatalogId = None


class ProductChanges(Input):
    """Only the fields given change; null clears price, category, reorder_days and catalog_product_id. Saving
    clears the product's placeholder flag (the owner has looked at it)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    sku: Sku | None = None
    name: ProductName | None = None
    price: OptionalAmount = None
    currency: Currency = None
    category: Category = None
    active: bool | None = None
    reorder_days: ReorderDays = None
    catalog_product_id: CatalogId = None


# A yes/no filter in a query string. Empty is a filter left out, as for every query field (schemas.Query), and
# the document says so.
QueryFlag = Annotated[
    bool | None,
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string", "enum": [""]}, {"type": "null"}]}),
]


class ProductSearch(Paging, Query):
    q: Annotated[Text, Field(max_length=NAME_MAX)] = Field("", description="Part of the SKU or the name")
    category: Annotated[Text, Field(max_length=CATEGORY_MAX)] = Field("", description="Only this category")
    active: QueryFlag = Field(None, description="Only active (true) or inactive (false) products; empty: all")
    placeholder: QueryFlag = Field(None, description="Only placeholders made from unknown cart items (true)")


# --- orders ----------------------------------------------------------------------------------------

Status = Literal[ORDER_STATUSES]  # type: ignore[valid-type]
Notes = Annotated[Text | None, Field(max_length=NOTES_MAX, description="Notes about the order")]


class NewOrder(Input):
    """An order for a contact; its number is given by SigDesk, its totals are the lines' sums."""

    model_config = ConfigDict(strict=True, extra="forbid")

    contact_id: JsonId
    lines: list[LineIn] = Field(max_length=500, description="At least one line")
    status: Status = "new"
    currency: Currency = None
    ordered_at: Moment = Field(
        None,
        description="When it was ordered (not in the future); a date alone is that day in the business time zone, "
        "a date and time without a zone is the business's wall clock; null: now",
    )
    notes: Notes = None
    external_ref: Annotated[Text | None, Field(max_length=REF_MAX, description="Your own system's reference")] = None


class OrderChanges(Input):
    """`lines` given replace all the lines; `notes` given (null clears) replace the notes."""

    model_config = ConfigDict(strict=True, extra="forbid")

    lines: list[LineIn] | None = Field(None, max_length=500)
    notes: Notes = None
    ordered_at: Moment = None


class StatusChange(Input):
    model_config = ConfigDict(strict=True, extra="forbid")

    status: Status
    note: Annotated[Text | None, Field(max_length=STATUS_NOTE_MAX, description="Why, for the history")] = None


class OrderSearch(Paging, Query):
    contact_id: Id | None = Field(None, description="Only this contact's orders")
    status: Status | None = Field(None, description="Only orders in this status")
    since: QueryDay = Field(None, description="Ordered on or after this day (YYYY-MM-DD, business time zone)")
    until: QueryDay = Field(None, description="Ordered on or before this day (YYYY-MM-DD, business time zone)")
