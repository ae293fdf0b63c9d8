"""A custom field's value: read from JSON (the API, the pages) or from a CSV/xlsx cell, checked against the
field's definition, and stored in the one column its kind uses.

Every way in goes through `parse`, so the API, the pages, imports and merges refuse alike, each refusal
naming `fields.<key>`. `to_json` is the way back out, for the contact record, exports and filters.

Numbers written as text follow one rule, so nothing is guessed silently: spaces and apostrophes group
digits; with both '.' and ',' the later one is the decimal mark ("1,234.50" and "1.234,50" are both
1234.5); a mark that appears more than once groups thousands ("1,234,567", "1.234.567"); a lone mark is
the decimal mark ("12,5", "12.5"), except a lone ',' followed by exactly three digits ("1,234"), which
is refused as ambiguous.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sigdesk.errors import UserError
from sigdesk.models.custom_field import TEXT_VALUE_LENGTH

if TYPE_CHECKING:
    from sigdesk.custom_fields.services import FieldDefinition

Stored = tuple[str | None, float | None, date | None]
EMPTY: Stored = (None, None, None)

# Beyond what a float holds exactly as a whole number (2**53), amounts stop being exact.
MAX_NUMBER = 1e15
TRUE_WORDS = frozenset({"yes", "y", "true", "t", "1", "ja", "j", "sí", "si", "s", "oui", "o", "sim", "x", "on"})
FALSE_WORDS = frozenset({"no", "n", "false", "f", "0", "nein", "non", "não", "nao", "off"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINK = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"(\d+(\.\d*)?|\.\d+)")
_DATE_FORMATS = (
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"), ("y", "m", "d")),
    (re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"), ("y", "m", "d")),
    (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), ("d", "m", "y")),
    (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})"), ("d", "m", "y")),
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY_MARKS = "€$£¥₹₽₺₩₪₫฿₱₦₴"


def _refuse(definition: FieldDefinition, message: str) -> UserError:
    return UserError(f"{definition.label}: {message}", field=f"fields.{definition.key}")


def parse(definition: FieldDefinition, raw: Any, *, from_text: bool = False) -> Stored:
    """The stored columns (text_value, number_value, date_value) for `raw`; all None: no value.

    `from_text` reads a spreadsheet cell (see the module's rules); otherwise `raw` is a JSON value of the
    field's type. An empty value (null, "", an empty list) is no value: whether that is allowed (required
    fields) is for the caller to say.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()) or (isinstance(raw, list) and not raw):
        return EMPTY
    reader = _READERS[definition.kind]
    return reader(definition, raw, from_text)


def to_json(
    definition: FieldDefinition, text_value: str | None, number_value: float | None, date_value: date | None
) -> Any:
    """The value as the API shows it: text, a number (a whole number as an int, amounts always as a float),
    a "YYYY-MM-DD" date, true/false, or a list of choices; None when there is none."""
    kind = definition.kind
    if kind in ("text", "link", "choice"):
        return text_value
    if kind == "choices":
        if text_value is None:
            return None
        try:
            found = json.loads(text_value)
        except ValueError:
            return None
        return [str(item) for item in found] if isinstance(found, list) else None
    if kind == "boolean":
        return None if number_value is None else bool(number_value)
    if kind == "date":
        return date_value.isoformat() if date_value is not None else None
    if number_value is None:
        return None
    if kind == "number" and float(number_value).is_integer():
        return int(number_value)
    return float(number_value)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The pattern as a compiled expression, or a UserError naming `pattern` (see services.clean_pattern)."""
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise UserError(f"The pattern is not a valid regular expression: {exc}", field="pattern") from None


# --- by kind -----------------------------------------------------------------------------------------


def _clean_text(definition: FieldDefinition, raw: Any, what: str = "text") -> str | None:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = format(raw, "g") if isinstance(raw, float) else str(raw)
    if not isinstance(raw, str):
        raise _refuse(definition, f"give {what}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(definition, "contains text that is not valid Unicode") from None
    value = raw.strip()
    if len(value) > TEXT_VALUE_LENGTH:
        raise _refuse(definition, f"at most {TEXT_VALUE_LENGTH} characters")
    if _CONTROL.search(value):
        raise _refuse(definition, "one line of text, without control characters")
    return value or None


def _matching(definition: FieldDefinition, value: str) -> None:
    if definition.pattern and compile_pattern(definition.pattern).fullmatch(value) is None:
        raise _refuse(definition, "does not have the form the admins set for this field")


def _text(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    if not from_text and not isinstance(raw, str):
        raise _refuse(definition, "give text")
    value = _clean_text(definition, raw)
    if value is None:
        return EMPTY
    _matching(definition, value)
    return value, None, None


def _link(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    if not isinstance(raw, str):
        raise _refuse(definition, "give a link such as https://example.com")
    value = _clean_text(definition, raw, "a link")
    if value is None:
        return EMPTY
    if from_text and "://" not in value:
        value = f"https://{value}"  # a spreadsheet's www.example.com
    if not _LINK.fullmatch(value):
        raise _refuse(definition, "give a link starting with http:// or https://")
    _matching(definition, value)
    return value, None, None


def _number_from_text(definition: FieldDefinition, raw: str) -> float:
    text = raw.strip()
    for mark in (" ", "\u00a0", "\u202f", "'", "’"):
        text = text.replace(mark, "")
    if definition.currency and text.upper().endswith(definition.currency):
        text = text[: -len(definition.currency)]
    if definition.currency and text.upper().startswith(definition.currency):
        text = text[len(definition.currency) :]
    text = text.strip(_CURRENCY_MARKS)
    sign = ""
    if text and text[0] in "+-":
        sign, text = text[0], text[1:]
    text = text.strip(_CURRENCY_MARKS)
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal_mark = "." if text.rfind(".") > text.rfind(",") else ","
        grouping = "," if decimal_mark == "." else "."
        if text.count(decimal_mark) > 1:
            raise _refuse(definition, "not a number")
        text = text.replace(grouping, "").replace(decimal_mark, ".")
    elif commas > 1 or dots > 1:
        text = text.replace(",", "").replace(".", "")
    elif commas == 1:
        if re.fullmatch(r"\d+,\d{3}", text):
            raise _refuse(definition, f"'{raw.strip()}' is ambiguous: write it without grouping, as 1234 or 1.234")
        text = text.replace(",", ".")
    if not _PLAIN_NUMBER.fullmatch(text):
        raise _refuse(definition, "not a number (write it as 1234.50 or 1.234,50)")
    return float(sign + text)


def _number(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    if isinstance(raw, bool):
        raise _refuse(definition, "give a number")
    if isinstance(raw, (int, float)):
        value = float(raw) if abs(raw) <= MAX_NUMBER * 10 else math.inf
    elif from_text and isinstance(raw, str):
        value = _number_from_text(definition, raw)
    else:
        raise _refuse(definition, "give a number")
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise _refuse(definition, f"give a number between -{MAX_NUMBER:.0f} and {MAX_NUMBER:.0f}")
    if definition.kind == "currency":
        try:
            exponent = Decimal(repr(value)).normalize().as_tuple().exponent
        except InvalidOperation:
            raise _refuse(definition, "give an amount") from None
        if isinstance(exponent, int) and exponent < -2:
            raise _refuse(definition, "an amount has at most two decimal places")
    return None, value + 0.0, None


def _boolean(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    if isinstance(raw, bool):
        return None, 1.0 if raw else 0.0, None
    if from_text:
        if isinstance(raw, (int, float)) and raw in (0, 1):
            return None, float(raw), None
        if isinstance(raw, str):
            word = raw.strip().casefold()
            if word in TRUE_WORDS:
                return None, 1.0, None
            if word in FALSE_WORDS:
                return None, 0.0, None
        raise _refuse(definition, "give yes or no")
    raise _refuse(definition, "give true or false")


def _date(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    if isinstance(raw, datetime):
        if not from_text:
            raise _refuse(definition, "give a date as YYYY-MM-DD")
        return None, None, raw.date()
    if isinstance(raw, date):
        return None, None, raw
    if not isinstance(raw, str):
        raise _refuse(definition, "give a date as YYYY-MM-DD")
    text = raw.strip()
    if not from_text:
        if not _ISO_DATE.fullmatch(text):
            raise _refuse(definition, "give a date as YYYY-MM-DD")
        formats = _DATE_FORMATS[:1]
    else:
        formats = _DATE_FORMATS
        if len(text) > 10 and re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]00:00(:00)?", text):
            text = text[:10]  # a spreadsheet's date written with its midnight
    for expression, order in formats:
        found = expression.fullmatch(text)
        if found:
            parts = dict(zip(order, (int(group) for group in found.groups())))
            try:
                return None, None, date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                raise _refuse(definition, f"there is no date '{text}'") from None
    raise _refuse(definition, "give a date as YYYY-MM-DD, DD/MM/YYYY, DD.MM.YYYY or YYYY/MM/DD")


def _option(definition: FieldDefinition, raw: Any, from_text: bool = False) -> str:
    if from_text and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = format(raw, "g")  # a spreadsheet's number cell, for choices named 1, 2, 3
    if not isinstance(raw, str):
        raise _refuse(definition, f"give one of: {', '.join(definition.options)}")
    wanted = raw.strip().casefold()
    for option in definition.options:
        if option.casefold() == wanted:
            return option
    raise _refuse(definition, f"'{raw.strip()[:100]}' is not one of: {', '.join(definition.options)}")


def _choice(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    return _option(definition, raw, from_text), None, None


def _choices(definition: FieldDefinition, raw: Any, from_text: bool) -> Stored:
    items: Sequence[Any]
    if isinstance(raw, list):
        items = raw
    elif from_text and isinstance(raw, str):
        items = raw.split(";") if ";" in raw else raw.split(",")
        items = [item for item in items if item.strip()]
    else:
        raise _refuse(definition, "give a list of choices")
    chosen = {_option(definition, item, from_text) for item in items}
    if not chosen:
        return EMPTY
    ordered = [option for option in definition.options if option in chosen]
    stored = json.dumps(ordered, ensure_ascii=False)
    if len(stored) > TEXT_VALUE_LENGTH:
        raise _refuse(definition, "too many choices at once")
    return stored, None, None


_READERS = {
    "text": _text,
    "link": _link,
    "number": _number,
    "currency": _number,
    "boolean": _boolean,
    "date": _date,
    "choice": _choice,
    "choices": _choices,
}
