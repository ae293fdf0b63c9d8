"""Keyset paging: the one cursor and page shape of every list (the API's and the inbox's).

A list sorted by (time, id), newest first, is paged by naming where the last page ended: the
next page starts strictly after that (time, id). Paging by id alone skips rows whenever id
order and time order disagree (a conversation opened long ago with a new message), and offsets
repeat or skip rows when rows move between requests. Rows with no time sort last, as both SQLite
and MariaDB order NULL after every value when descending. Cursors are opaque to clients so the
format can change; a cursor that SigDesk did not give out is refused, naming the field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import Session

from sigdesk.errors import UserError

MAX_ID = 2**53 - 1  # the largest integer every JSON client reads exactly
MAX_CURSOR = 200
Row = TypeVar("Row")


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: (sort time, id) of its last row."""

    at: datetime | None
    id: int

    def encode(self) -> str:
        raw = f"{self.at.isoformat() if self.at else ''}~{self.id}".encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, field: str = "cursor") -> "Cursor":
        refused = UserError(f"'{field}' is not a list position SigDesk gave out", field=field)
        if len(text) > MAX_CURSOR:
            raise refused
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
            at_text, _, id_text = raw.rpartition("~")
            at = datetime.fromisoformat(at_text) if at_text else None
        except (ValueError, binascii.Error) as exc:
            raise refused from exc
        if not (id_text.isascii() and id_text.isdigit()) or not 1 <= int(id_text) <= MAX_ID:
            raise refused
        if at is not None and at.tzinfo is None:
            raise refused
        return cls(at, int(id_text))

    def after(self, at: Any, id_: Any) -> ColumnElement[bool]:
        """Rows that come after this cursor in (at DESC, id DESC) order, NULL times last."""
        if self.at is None:
            return and_(at.is_(None), id_ < self.id)
        return or_(at < self.at, and_(at == self.at, id_ < self.id), at.is_(None))


@dataclass(frozen=True)
class Page(Generic[Row]):
    items: list[Row]
    next_cursor: str | None


def newest_first(query: Select, at: Any, id_: Any, cursor: Cursor | None, limit: int) -> Select:
    """Order by (at, id) newest first, start after `cursor`, and read one row more than a page
    so page() can tell whether another page follows."""
    if cursor is not None:
        query = query.where(cursor.after(at, id_))
    return query.order_by(at.desc(), id_.desc()).limit(limit + 1)


def page(found: Sequence[Row], limit: int, cursor_of: Callable[[Row], Cursor]) -> Page[Row]:
    """A page of what newest_first() read, with the cursor of its last row when more follow."""
    items = list(found[:limit])
    more = len(found) > limit and bool(items)
    return Page(items, cursor_of(items[-1]).encode() if more else None)


def in_key_order(
    session: Session, query: Select, key: Any, key_of: Callable[[Any], Any], size: int
) -> Iterator[list[Any]]:
    """Every row of `query` once, in batches of `size` after the last batch's `key` (the primary key), for
    readers of a whole table (exports): memory stays at one batch. Lists people page through are ordered by
    time (newest_first); a whole table has no time order to keep, and reading messages by (time, id) would
    sort the table again for every batch, as no index holds that order."""
    last = None
    while True:
        batch = session.execute((query if last is None else query.where(key > last)).order_by(key).limit(size)).all()
        if not batch:
            return
        yield batch
        last = key_of(batch[-1])
