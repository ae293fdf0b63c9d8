"""Amounts of money as people type them and as SigDesk stores them: whole minor units of an ISO currency.

Each currency has its own number of decimals (EUR 2, JPY 0, BHD 3; Babel's CLDR data knows them), so "12.5"
is 1250 cents of EUR but a refusal for JPY, and nothing is ever rounded silently.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision, list_currencies
from sqlalchemy.orm import Session

from sigdesk.errors import UserError
from sigdesk.models import Setting
from sigdesk.settings.specs import SettingError, spec_for

CURRENCIES = frozenset(list_currencies())
# Larger than any small shop's order, small enough that a sum of a million of them fits a signed 64-bit column.
MAX_MINOR = 10**12
CURRENCY_SETTING = "sales.currency"


def shop_currency(session: Session) -> str:
    """The shop's currency: setting sales.currency, else the setting's default (the machine's country's
    currency). The one reading of it for products, orders, carts, imports and the dashboard; the setting is
    never a secret, so no data key is needed."""
    spec = spec_for(CURRENCY_SETTING)
    row = session.get(Setting, CURRENCY_SETTING)
    if row is None:
        return spec.default
    try:
        return spec.parse(row.value)
    except SettingError:
        return spec.default


def currency_code(text: str | None, field: str = "currency") -> str:
    """An ISO 4217 code such as EUR, whatever its case."""
    code = (text or "").strip().upper()
    if code not in CURRENCIES:
        raise UserError(
            f"'{text or ''}' is not a currency: give a three-letter ISO code such as EUR or USD", field=field
        )
    return code


def decimals(currency: str) -> int:
    return get_currency_precision(currency)


def _decimal_point(text: str, places: int) -> str:
    """A decimal comma as much of the world types it ("2,50" EUR is 2.50), when it cannot be a thousands
    separator: one comma, no point, and no more digits after it than the currency has decimals."""
    whole, comma, fraction = text.partition(",")
    if comma and "," not in fraction and "." not in text and fraction.isdigit() and len(fraction) <= places:
        return f"{whole}.{fraction}"
    return text


def to_minor(amount: Decimal | int | float | str, currency: str, field: str = "price") -> int:
    """An amount in minor units; refused when it is not a number, negative, too large, or has more decimals
    than the currency has (12.345 EUR). A decimal comma is read as a point ("2,50")."""
    try:
        if isinstance(amount, Decimal):
            value = amount
        elif isinstance(amount, int):  # not through str(): Python refuses to print an int of 4,300 digits
            value = Decimal(amount)
        else:
            value = Decimal(_decimal_point(str(amount).strip(), decimals(currency)))
    except InvalidOperation:
        raise UserError(f"'{amount}' is not an amount of money", field=field) from None
    if not value.is_finite():
        raise UserError(f"'{amount}' is not an amount of money", field=field)
    if value < 0:
        raise UserError("An amount of money cannot be negative", field=field)
    places = decimals(currency)
    highest = Decimal(MAX_MINOR).scaleb(-places)
    if value > highest:  # judged before any scaling, which 1e999999 would overflow
        raise UserError(f"The amount is more than SigDesk accepts (at most {highest:,})", field=field)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise UserError(f"{currency} amounts have at most {places} decimals, not '{amount}'", field=field)
    return int(value.scaleb(places))


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units back to the amount (1250, EUR -> Decimal('12.50'))."""
    places = decimals(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    """For people: "€12.50", "¥1,200"."""
    return format_currency(from_minor(minor, currency), currency, locale=locale)
