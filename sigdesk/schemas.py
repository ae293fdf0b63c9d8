"""Input types every declared schema shares (pydantic), so each bound is written once.

Query strings and path segments arrive as text: Python's int() and str.isdigit() take "١٢" and
"²" for numbers, and ids past 2**63 overflow the database, so whole numbers are read from ASCII
digits only and bounded to what every JSON client reads exactly. Free-form JSON objects are
walked for lone surrogates, which JSON can spell but no database can store.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from werkzeug.datastructures import FileStorage

from sigdesk.paging import MAX_CURSOR, MAX_ID


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("must be a whole number written with the digits 0-9")
        return int(value) if len(value) <= 20 else MAX_ID + 1
    return value


def _json_whole_number(value: Any) -> Any:
    """A JSON number with no fraction (JSON Schema's integer takes 2.0 too); never a string or a boolean."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError("must be a whole number, not text")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _valid_unicode(value: Any) -> Any:
    """Every key and string inside, however deep, is encodable text."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError("contains text that is not valid Unicode") from exc
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


def _uploaded(value: Any) -> FileStorage:
    if not isinstance(value, FileStorage) or not value.filename:
        raise ValueError("must be a file (a multipart part with a filename)")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]
JsonId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]  # an id in a JSON body: a number, never "12"
JsonWhole = BeforeValidator(_json_whole_number)  # with int: a small count or choice in a JSON body
JsonObject = Annotated[dict[str, Any], AfterValidator(_valid_unicode)]
JsonList = Annotated[list[Any], AfterValidator(_valid_unicode)]
Text = Annotated[str, AfterValidator(_valid_unicode)]
UploadedFile = Annotated[Any, AfterValidator(_uploaded), WithJsonSchema({"type": "string", "format": "binary"})]


def limit(default: int, high: int) -> Any:
    """A page size: a whole number from 1 to `high`."""
    return Field(default, ge=1, le=high, description=f"How many items to answer (1 to {high})")


PageSize = Annotated[int, BeforeValidator(_whole_number)]


class Input(BaseModel):
    """Request bodies: JSON types as sent (no "true" for true, no 1.0 for 1)."""

    model_config = ConfigDict(strict=True)


ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("must be a day written YYYY-MM-DD")
    return value


# A day in a query string or body, written YYYY-MM-DD only (pydantic alone would also take "0" as 1970-01-01).
Day = Annotated[
    date,
    BeforeValidator(_iso_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": ISO_DAY.pattern}),
]
# The same in a Query, where an empty field is a field left out, and the document says so.
QueryDay = Annotated[
    date | None,
    BeforeValidator(_iso_day),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date", "pattern": ISO_DAY.pattern},
                {"type": "string", "enum": [""]},
                {"type": "null"},
            ]
        }
    ),
]


class Query(BaseModel):
    """A query string: an empty field is a field left out (forms and the pages' scripts send them)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data


class Paging(BaseModel):
    """?cursor=&limit= of every list."""

    cursor: str = Field("", max_length=MAX_CURSOR, description="next_cursor of the previous page; empty for the first")
    limit: PageSize = limit(50, 200)
