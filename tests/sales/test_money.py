"""Amounts as shops type them: a decimal comma is read where it cannot be a thousands separator, and anything
that could mean two amounts is refused naming the field rather than guessed."""

from __future__ import annotations

import pytest

from sigdesk.errors import UserError
from sigdesk.sales.money import format_money, to_minor


@pytest.mark.parametrize(("typed", "currency", "minor"), [("2,50", "EUR", 250), ("2,5", "EUR", 250), ("7", "EUR", 700)])
def test_a_decimal_comma_is_read_as_a_point(typed, currency, minor):
    assert to_minor(typed, currency) == minor


@pytest.mark.parametrize("typed", ["1,234", "1,2,3", "1.000,50", "-1", "12.345", "abc", "nan"])
def test_amounts_that_are_ambiguous_or_wrong_are_refused_naming_the_field(typed):
    with pytest.raises(UserError) as refused:
        to_minor(typed, "EUR", field="price")
    assert refused.value.field == "price"


def test_each_currency_keeps_its_own_decimals():
    assert to_minor("1200", "JPY") == 1200 and format_money(120000, "JPY") == "¥120,000"
    with pytest.raises(UserError):
        to_minor("1,200", "JPY")  # no decimals in yen: a comma there is a thousands separator, not guessed
