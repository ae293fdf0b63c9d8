"""Finding contacts by a filter, a search and a sort: the read model behind the Contacts page, its API,
segments, exports and bulk actions. The filter compiles in sigdesk.segments.filters; the search is the
contacts' own (sigdesk.contacts.services.matching); this module adds sorting and keyset paging.

Any sortable column pages by (sort value, id), so rows never repeat or go missing while people page,
whatever is sorted on. NULLs come where both databases put them: first ascending, last descending, so
an index on the column serves the order as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from sigdesk.contacts.fields import default_country
from sigdesk.contacts.services import COLUMNS, ContactData, matching, with_tags_and_stage
from sigdesk.errors import NotFound, UserError
from sigdesk.models import Contact, ContactField, ContactFieldValue, ContactStage, Segment, Stage
from sigdesk.paging import MAX_ID, Page
from sigdesk.segments.filters import FIELD_PREFIX, FilterDefinition, compile_filter, latest_contact_at, parse_definition

DEFAULT_SORT = "-created_at"
# A cursor holds the last row's sort value, which may be a 500-character custom text: longer than a time's.
MAX_SORT_CURSOR = 4000
BATCH = 1000
SORTS = (
    "name",
    "created_at",
    "updated_at",
    "last_contact_at",
    "company",
    "city",
    "country",
    "stage",
    "lead_score",
)


# --- segments -------------------------------------------------------------------------------------------


class SegmentData(BaseModel):
    """A saved filter as the team sees it."""

    id: int
    name: str
    definition: FilterDefinition
    created_by: int | None = Field(description="The user who saved it; null when they are gone or it came from SigDesk")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> "SegmentData":
        return cls(
            id=segment.id,
            name=segment.name,
            definition=FilterDefinition.model_validate(json.loads(segment.definition)),
            created_by=segment.created_by,
            created_at=segment.created_at,
            updated_at=segment.updated_at,
        )


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name, Segment.id)))


def get_segment(session: Session, segment_id: int, field: str = "segment_id") -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"There is no segment {segment_id}", field=field)
    return segment


def definition_of(session: Session, segment_id: int, field: str = "segment_id") -> FilterDefinition:
    """A saved segment's filter, to hand to find_contacts, count_contacts or contact_ids."""
    return FilterDefinition.model_validate(json.loads(get_segment(session, segment_id, field).definition))


# --- finding contacts ----------------------------------------------------------------------------------


def where(session: Session, definition: object | None, q: str = "", driving: bool = False) -> ColumnElement[bool]:
    """The WHERE of contacts passing the filter (None: every contact; a list: every filter in it) and
    matching the search `q`; `driving` as compile_filter takes it."""
    if isinstance(definition, (list, tuple)):
        condition = and_(true(), *(compile_filter(session, item, driving=driving) for item in definition))
    else:
        condition = compile_filter(session, definition, driving=driving) if definition is not None else true()
    searched = matching(q, default_country(session), session) if q and q.strip() else None
    return condition if searched is None else and_(condition, searched)


@dataclass(frozen=True)
class Sort:
    """A sort key ("-created_at": newest first), what it orders by, and whether the value can be NULL."""

    key: str
    expression: Any
    descending: bool
    nullable: bool


def parse_sort(session: Session, sort: str | None) -> Sort:
    text = (sort or DEFAULT_SORT).strip()
    descending = text.startswith("-")
    key = text[1:] if descending else text
    refused = UserError(
        f"'sort' is one of {', '.join(SORTS)} or field:<key>, with '-' in front for descending", field="sort"
    )
    if key.startswith(FIELD_PREFIX):
        field = session.scalar(select(ContactField).where(ContactField.key == key[len(FIELD_PREFIX) :]))
        if field is None:
            raise UserError(f"There is no custom field '{key[len(FIELD_PREFIX) :]}' to sort by", field="sort")
        column = {
            "number": ContactFieldValue.number_value,
            "currency": ContactFieldValue.number_value,
            "boolean": ContactFieldValue.number_value,
            "date": ContactFieldValue.date_value,
        }.get(field.kind, ContactFieldValue.text_value)
        value = (
            select(column)
            .where(ContactFieldValue.contact_id == Contact.id, ContactFieldValue.field_id == field.id)
            .scalar_subquery()
        )
        return Sort(key, value, descending, True)
    if key not in SORTS:
        raise refused
    if key == "name":
        expression = func.coalesce(
            func.nullif(Contact.display_name, ""), Contact.profile_name, Contact.wa_id, Contact.user_id
        )
        return Sort(key, expression, descending, True)
    if key == "last_contact_at":
        return Sort(key, latest_contact_at(), descending, True)
    if key == "stage":
        position = (
            select(Stage.position)
            .join(ContactStage, ContactStage.stage_id == Stage.id)
            .where(ContactStage.contact_id == Contact.id)
            .scalar_subquery()
        )
        return Sort(key, position, descending, True)
    if key == "lead_score":
        score = getattr(Contact, "lead_score", None)
        if score is None:
            raise refused
        return Sort(key, score, descending, True)
    return Sort(key, getattr(Contact, key), descending, key != "created_at")


def _encode_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, bool):
        return ["n", int(value)]
    if isinstance(value, (int, float)):
        return ["n", value]
    return ["s", str(value)]


def _decode_value(stored: Any) -> Any:
    if stored is None:
        return None
    kind, value = stored
    if kind == "t":
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError("a time without zone")
        return at
    if kind == "d":
        return date.fromisoformat(value)
    if kind == "n" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "s" and isinstance(value, str):
        return value
    raise ValueError("not a sort value")


def encode_cursor(sort: Sort, value: Any, id_: int) -> str:
    """Where a page ends: the sort it belongs to, the last row's sort value and id (opaque to clients)."""
    raw = json.dumps([sort.key, sort.descending, _encode_value(value), id_], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(sort: Sort, text: str, field: str = "cursor") -> tuple[Any, int]:
    refused = UserError(f"'{field}' is not a list position SigDesk gave out for this sort", field=field)
    if len(text) > MAX_SORT_CURSOR:
        raise refused
    try:
        key, descending, stored, id_ = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        value = _decode_value(stored)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise refused from exc
    if key != sort.key or descending is not sort.descending:
        raise refused
    if isinstance(id_, bool) or not isinstance(id_, int) or not 1 <= id_ <= MAX_ID:
        raise refused
    return value, id_


def after(sort: Sort, value: Any, id_: int) -> ColumnElement[bool]:
    """Rows after (value, id) in the sort's order, NULLs first ascending and last descending."""
    column = sort.expression
    if sort.descending:
        if value is None:
            return and_(column.is_(None), Contact.id < id_)
        later = or_(column < value, and_(column == value, Contact.id < id_))
        return or_(later, column.is_(None)) if sort.nullable else later
    if value is None:
        return or_(and_(column.is_(None), Contact.id > id_), column.is_not(None))
    return or_(column > value, and_(column == value, Contact.id > id_))


def find_contacts(
    session: Session,
    definition: object | None = None,
    q: str = "",
    sort: str | None = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ContactData]:
    """A page of the contacts passing the filter and matching `q`, in the order `sort` names
    ("-created_at", "name", "field:budget"...); `cursor` is the previous page's next_cursor."""
    rows, next_cursor = page_rows(session, definition, q, sort, cursor, limit)
    contacts = [ContactData.of_row(row[: len(COLUMNS)]) for row in rows]
    return Page(with_tags_and_stage(session, contacts), next_cursor)


def page_rows(
    session: Session,
    definition: object | None,
    q: str = "",
    sort: str | None = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Any], str | None]:
    """The rows (COLUMNS, then the sort value) of a page and the next page's cursor: find_contacts without
    the tags, stage and custom values, for readers that want the record only (and the benchmark)."""
    order = parse_sort(session, sort)
    query = select(*COLUMNS, order.expression.label("sort_value")).where(where(session, definition, q))
    if cursor:
        value, id_ = decode_cursor(order, cursor)
        query = query.where(after(order, value, id_))
    if order.descending:
        query = query.order_by(order.expression.desc(), Contact.id.desc())
    else:
        query = query.order_by(order.expression.asc(), Contact.id.asc())
    rows = session.execute(query.limit(limit + 1)).all()
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit and items:
        last = items[-1]
        next_cursor = encode_cursor(order, last.sort_value, last.id)
    return list(items), next_cursor


def count_contacts(session: Session, definition: object | None = None, q: str = "") -> int:
    """How many contacts pass the filter and match `q` (a segment's live count)."""
    return session.scalar(select(func.count(Contact.id)).where(where(session, definition, q, driving=True))) or 0


def contact_ids(session: Session, definition: object | None = None, q: str = "", batch: int = BATCH) -> Iterator[int]:
    """Every id passing the filter and matching `q`, in id order, read `batch` at a time so memory stays small
    (bulk actions, exports, broadcasts). The filter is compiled once, so a deleted tag fails before any row."""
    condition = where(session, definition, q)
    last = 0
    while True:
        ids = list(
            session.scalars(select(Contact.id).where(condition, Contact.id > last).order_by(Contact.id).limit(batch))
        )
        yield from ids
        if len(ids) < batch:
            return
        last = ids[-1]


def check_definition(session: Session, definition: object) -> FilterDefinition:
    """Parse and compile a definition once, so a bad one is refused (422 naming the condition) before saving."""
    parsed = parse_definition(definition)
    compile_filter(session, parsed)
    return parsed


def filters_of(
    session: Session,
    tag: str = "",
    stage: str = "",
    consent: str = "",
    segment: int | None = None,
    filter: object | None = None,
) -> list[Any]:
    """The definitions the contacts list's quick filters stand for, ANDed by find_contacts and count_contacts:
    a tag, a stage and a consent state by name, a saved segment by id and a definition (JSON or a dict).
    A tag or stage that does not exist is refused naming its parameter."""
    definitions: list[Any] = []
    quick = (("tag", tag, "has"), ("stage", stage, "is"), ("consent", consent, "is"))
    for name, value, op in quick:
        if value:
            definition = {"conditions": [{"field": name, "op": op, "value": value}]}
            try:
                compile_filter(session, definition)
            except UserError as exc:
                raise UserError(f"There is no {name} '{value}'", status=422, field=name) from exc
            definitions.append(definition)
    if segment is not None:
        definitions.append(definition_of(session, segment, field="segment"))
    if filter is not None and filter != "":
        definitions.append(check_definition(session, filter))
    return definitions
