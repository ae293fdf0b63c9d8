"""Ordered lists the admins arrange (stages, custom fields, lead-score rules): one way to move an item."""

from __future__ import annotations

from typing import Any

from sigdesk.errors import UserError


def place(others: list[Any], row: Any, position: object, refusal: type[UserError] = UserError) -> None:
    """Put `row` at `position` (1 first) among `others`, numbering them all 1, 2, 3...; `refusal` is the
    error a position out of range raises (the API of each list decides its status)."""
    order = [item for item in others if item.id != row.id]
    count = len(order) + 1
    if not isinstance(position, int) or isinstance(position, bool) or not 1 <= position <= count:
        raise refusal(f"'position' is a whole number from 1 to {count}", field="position")
    order.insert(position - 1, row)
    for number, item in enumerate(order, start=1):
        item.position = number
