"""Reorder predictions in the REST API: who is likely to order within N days, as of any day.

`GET /api/v1/reorders` answers, for each contact with at least one (not cancelled, not returned) order dated
before `as_of`, the probability of at least one order dated in [as_of, as_of + horizon_days), the expected
number of orders in that window and the expected day of the next one, computed from the orders dated before
`as_of` only. Today's answer with a stored horizon comes from the background refresh when it is current;
any other day is computed on the fly.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from flask import request
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema

from sigdesk.api.views import bp
from sigdesk.openapi import operation
from sigdesk.paging import MAX_CURSOR, Cursor
from sigdesk.predictions import services
from sigdesk.schemas import Day, PageSize, Text
from sigdesk.web import db_session, requires

MAX_LIMIT = 1000


def _limit(value: Any) -> Any:
    if isinstance(value, str) and value != "all":
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be 'all' or a whole number written with the digits 0-9")
        return int(value) if len(value) <= 20 else MAX_LIMIT + 1
    return value


class ReorderQuery(BaseModel):
    as_of: Day | None = Field(
        None,
        description="Predict as of this day (business time zone): only orders dated before it count. "
        "Default: today. A day in the future is a 422.",
    )
    horizon_days: PageSize = Field(
        ge=1, le=365, description="The window [as_of, as_of + horizon_days) the probability is for, in days"
    )
    product: Annotated[Text, Field(min_length=1, max_length=100)] | None = Field(
        None,
        description="Only customers who bought this SKU before as_of; next_order_at is then that product's "
        "expected reorder day when they buy it regularly. An unknown SKU is a 422.",
    )
    limit: Annotated[
        Annotated[int, Field(ge=1, le=MAX_LIMIT)] | Literal["all"],
        BeforeValidator(_limit),
        WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, {"const": "all"}]}),
    ] = Field(100, description=f"How many customers to answer (1 to {MAX_LIMIT}), or all to answer every one")
    cursor: str = Field("", max_length=MAX_CURSOR, description="next_cursor of the previous page; empty for the first")


class ReorderData(BaseModel):
    contact_id: int
    phone: str | None = Field(description="E.164 digits without '+', as WhatsApp's wa_id; null when unknown")
    probability: float = Field(ge=0, le=1, description="Probability of at least one order in the window")
    expected_orders: float = Field(ge=0, description="Expected number of orders in the window")
    next_order_at: date | None = Field(description="Expected day of the next order; null: not enough history")
    at_risk: bool = Field(description="The expected order is overdue by the configured margin")
    reason: str | None = Field(description="Why a figure is missing or rough (e.g. only one order so far)")


class ReorderPage(BaseModel):
    """By contact id."""

    as_of: date
    horizon_days: int
    items: list[ReorderData]
    next_cursor: str | None = Field(description="Give it as ?cursor= for the next page; null on the last page")


@bp.get("/reorders")
@requires("contacts.view")
@operation("listReorders", (200, ReorderPage), query=ReorderQuery, errors=(422,))
def list_reorders():
    """Reorder predictions as of a day, for every customer with an order before it

    Computed from orders dated before `as_of` only (cancelled and returned orders never count). A customer
    with one order is listed with `next_order_at` null and a `reason`. `limit=all` answers every customer
    in one page.
    """
    query: ReorderQuery = request.context.query  # type: ignore[attr-defined]
    session = db_session()
    as_of = services.check_as_of(session, query.as_of)
    after = Cursor.decode(query.cursor).id if query.cursor else 0
    limit = None if query.limit == "all" else int(query.limit)
    rows, following = services.reorders(session, as_of, query.horizon_days, query.product, after, limit)
    return ReorderPage(
        as_of=as_of,
        horizon_days=query.horizon_days,
        items=[
            ReorderData(
                contact_id=row.contact_id,
                phone=row.phone,
                probability=min(max(row.probability, 0.0), 1.0),
                expected_orders=max(row.expected_orders, 0.0),
                next_order_at=row.next_order_at,
                at_risk=bool(row.at_risk),
                reason=row.reason,
            )
            for row in rows
        ],
        next_cursor=Cursor(None, following).encode() if following is not None else None,
    )
