"""The contact filter: one definition, stored as data, compiled to SQL here and nowhere else.

The Contacts page, its API, saved segments, exports and (later) broadcasts and automation all describe
"which contacts" with the same JSON:

    {"match": "all" | "any", "conditions": [{"field": "tag", "op": "has", "value": "VIP"}, ...]}

and read it back through `compile_filter`, a WHERE clause on `contacts`. Conditions on what a contact
carries (tags, stage, custom field values, conversation labels) are `IN (subquery)` on the tables' indexes,
so the database may drive the query from the small side. Relative dates ("within_last_days") are
computed when the filter runs, so a saved segment stays live.

A definition is checked as it compiles: an unknown field, an operator the field's type has no use for or
a value of the wrong shape is a 422 whose `field` names the condition (`conditions[2].value`); a condition
naming a tag, stage, label or custom field that no longer exists says so, so the segment can be edited.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, and_, case, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from sigdesk.contacts.phones import normalise
from sigdesk.db import utcnow
from sigdesk.errors import Refused, UserError
from sigdesk.lifecycle.services import find_stage, find_tag
from sigdesk.schemas import Text, _valid_unicode
from sigdesk.models import (
    Contact,
    ContactField,
    ContactFieldValue,
    ContactStage,
    ContactTag,
    Conversation,
    ConversationLabel,
    Label,
    Segment,
)

MAX_CONDITIONS = 30
MAX_TEXT = 500
MAX_CHOICES = 100
MAX_DAYS = 36_500
CONSENT_STATES = ("opted_in", "opted_out", "unknown")
FIELD_PREFIX = "field:"
# Past this many matching rows, scanning contacts in the sort's order finds a page sooner than reading and
# sorting every match (about the square root of 50 matches a page times 100,000 contacts).
COMMON_ROWS = 2000


class Condition(BaseModel):
    """One test a contact passes or not; which ops and values a field takes depends on its type."""

    model_config = ConfigDict(extra="forbid")

    field: Text = Field(
        min_length=1,
        max_length=80,
        description="name, phone, email, company, city, country, language, owner, created_at, updated_at, "
        "last_inbound_at, last_outbound_at, last_contact_at, consent, tag, stage, label, lead_score, "
        "or field:<key> for a custom field",
    )
    op: Text = Field(
        min_length=1,
        max_length=32,
        description="text: is, is_not, contains, starts_with; number and date: eq, gt, lt, between; dates also "
        "within_last_days, more_than_days_ago; choice: is, is_not, in; choices, tag, label: has, has_not; "
        "stage: is, is_not, in; boolean: is; every field: is_empty, is_set",
    )
    value: Annotated[Any, AfterValidator(_valid_unicode)] = Field(
        None, description="What the op compares with; a list for in and between; none for is_empty"
    )


class FilterDefinition(BaseModel):
    """Which contacts: those passing all (or any) of the conditions; no conditions: every contact."""

    model_config = ConfigDict(extra="forbid")

    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)


def parse_definition(raw: object) -> FilterDefinition:
    """A definition from JSON text, a dict or a model; a wrong shape is a 422 naming the part at fault."""
    if isinstance(raw, FilterDefinition):
        return raw
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise Refused("The filter is not valid JSON", field="filter") from exc
    try:
        return FilterDefinition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _where(first["loc"])
        raise Refused(f"'{where}': {first['msg']}", field=where) from exc


def _where(loc: tuple[Any, ...]) -> str:
    """pydantic's location as the API names it: ("conditions", 2, "value") is conditions[2].value."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "filter"


# --- field types and their operators ---------------------------------------------------------------

OPS: dict[str, tuple[str, ...]] = {
    "text": ("is", "is_not", "contains", "starts_with", "is_empty", "is_set"),
    "number": ("eq", "gt", "lt", "between", "is_empty", "is_set"),
    "date": ("eq", "gt", "lt", "between", "within_last_days", "more_than_days_ago", "is_empty", "is_set"),
    "choice": ("is", "is_not", "in", "is_empty", "is_set"),
    "choices": ("has", "has_not", "is_empty", "is_set"),
    "boolean": ("is", "is_empty", "is_set"),
    "tag": ("has", "has_not", "is_empty", "is_set"),
    "label": ("has", "has_not", "is_empty", "is_set"),
    "stage": ("is", "is_not", "in", "is_empty", "is_set"),
    "owner": ("is", "is_not", "is_empty", "is_set"),
}
STANDARD_TYPES = {
    "name": "text",
    "phone": "text",
    "email": "text",
    "company": "text",
    "city": "text",
    "country": "text",
    "language": "text",
    "owner": "owner",
    "created_at": "date",
    "updated_at": "date",
    "last_inbound_at": "date",
    "last_outbound_at": "date",
    "last_contact_at": "date",
    "consent": "choice",
    "tag": "tag",
    "stage": "stage",
    "label": "label",
    "lead_score": "number",
}
# Custom field kinds (sigdesk.models.custom_field.FIELD_KINDS) as filter types, and the column holding them.
KIND_TYPES = {
    "text": "text",
    "link": "text",
    "number": "number",
    "currency": "number",
    "date": "date",
    "boolean": "boolean",
    "choice": "choice",
    "choices": "choices",
}


def latest_contact_at() -> ColumnElement[Any]:
    """When SigDesk last heard from or wrote to the contact: the later of the two times, NULL if neither."""
    inbound, outbound = Contact.last_inbound_at, Contact.last_outbound_at
    return case(
        (inbound.is_(None), outbound),
        (outbound.is_(None), inbound),
        (inbound > outbound, inbound),
        else_=outbound,
    )


@dataclass
class _Context:
    session: Session
    index: int
    condition: Condition
    now: datetime
    default_country: str | None

    driving: bool = False

    def holds(self, contact_column: Any, query: Any) -> ColumnElement[bool]:
        """The contact has a row in `query`, written so the database reads the fewest rows.

        Counting (`driving`), and for a first page when few rows match: an IN whose subquery is read first
        from its index. A first page when many match: a test per contact in the sort's order, probing the
        table's primary key, which stops after a page of matches (a correlated EXISTS on SQLite; a scalar
        subquery on MariaDB, which would otherwise turn EXISTS into a join and sort every match)."""
        if self.driving or not self._common(query):
            return Contact.id.in_(query)
        probe = query.where(contact_column == Contact.id)
        if self.session.get_bind().dialect.name == "mysql":
            return probe.limit(1).scalar_subquery().is_not(None)
        return exists(probe)

    def _common(self, query: Any) -> bool:
        """Whether at least COMMON_ROWS rows match (reads at most that many index entries)."""
        return (self.session.scalar(select(func.count()).select_from(query.limit(COMMON_ROWS).subquery())) or 0) >= (
            COMMON_ROWS
        )

    def refuse(self, message: str, part: str = "value") -> Refused:
        where = f"conditions[{self.index}].{part}"
        return Refused(f"'{where}': {message}", field=where)


# --- values -------------------------------------------------------------------------------------------


def _text(ctx: _Context, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ctx.refuse(f"give text of 1 to {MAX_TEXT} characters")
    return value.strip()


def _texts(ctx: _Context, value: Any) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHOICES:
        raise ctx.refuse(f"give a list of 1 to {MAX_CHOICES} values")
    return [_text(ctx, item) for item in value]


def _number(ctx: _Context, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.refuse("give a number")
    if abs(value) > 1e15:
        raise ctx.refuse("give a number below a million billion")
    return float(value)


def _pair(ctx: _Context, value: Any, one: Callable[[_Context, Any], Any]) -> tuple[Any, Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ctx.refuse("give a list of two values, the lowest and the highest")
    low, high = one(ctx, value[0]), one(ctx, value[1])
    if low > high:
        raise ctx.refuse("the first value of between is the lowest")
    return low, high


def _days(ctx: _Context, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise ctx.refuse(f"give a whole number of days, 0 to {MAX_DAYS}")
    return value


def _moment(ctx: _Context, value: Any) -> date | datetime:
    """A day (2026-03-01: all of it, in UTC) or a moment with its time zone (2026-03-01T09:30:00Z)."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            if len(value) == 10:
                return date.fromisoformat(value)
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                raise ctx.refuse("a time needs its zone, such as 2026-03-01T09:30:00Z")
            if not 1900 <= moment.year <= 9998:
                raise ctx.refuse("give a date between 1900 and 9998")
            return moment.astimezone(timezone.utc)
    raise ctx.refuse("give a date (2026-03-01) or a time with its zone (2026-03-01T09:30:00Z)")


def _day(ctx: _Context, value: Any) -> date:
    moment = _moment(ctx, value)
    return moment.date() if isinstance(moment, datetime) else moment


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


# --- comparisons of one value (a column, or what a subquery reads) ------------------------------------


@dataclass
class _Times:
    """Comparisons of a time: a column, or the later of two (last_contact_at), which keeps each on its index."""

    ge: Callable[[Any], ColumnElement[bool]]
    gt: Callable[[Any], ColumnElement[bool]]
    lt: Callable[[Any], ColumnElement[bool]]
    le: Callable[[Any], ColumnElement[bool]]
    eq: Callable[[Any], ColumnElement[bool]]
    empty: ColumnElement[bool]


def _column_times(column: Any) -> _Times:
    return _Times(
        lambda at: column >= at,
        lambda at: column > at,
        lambda at: column < at,
        lambda at: column <= at,
        lambda at: column == at,
        column.is_(None),
    )


def _latest_times() -> _Times:
    inbound, outbound = Contact.last_inbound_at, Contact.last_outbound_at
    neither = and_(inbound.is_(None), outbound.is_(None))

    def before(op: Callable[[Any, Any], ColumnElement[bool]]) -> Callable[[Any], ColumnElement[bool]]:
        return lambda at: and_(
            or_(inbound.is_(None), op(inbound, at)), or_(outbound.is_(None), op(outbound, at)), not_(neither)
        )

    return _Times(
        lambda at: or_(inbound >= at, outbound >= at),
        lambda at: or_(inbound > at, outbound > at),
        before(lambda column, at: column < at),
        before(lambda column, at: column <= at),
        lambda at: latest_contact_at() == at,
        neither,
    )


def _dates(ctx: _Context, times: _Times, op: str, value: Any, days_only: bool) -> ColumnElement[bool]:
    """A date condition. `days_only`: the column holds days (custom date fields), else moments in UTC."""
    if op in ("within_last_days", "more_than_days_ago"):
        days = _days(ctx, value)
        since: Any = ctx.now.date() - timedelta(days=days) if days_only else ctx.now - timedelta(days=days)
        return times.ge(since) if op == "within_last_days" else times.lt(since)
    if days_only:
        if op == "between":
            low, high = _pair(ctx, value, _day)
            return and_(times.ge(low), times.le(high))
        day = _day(ctx, value)
        return {"eq": times.eq, "gt": times.gt, "lt": times.lt}[op](day)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ctx.refuse("give a list of two dates, the earliest and the latest")
        low, high = _moment(ctx, value[0]), _moment(ctx, value[1])
        since = low if isinstance(low, datetime) else _start(low)
        if isinstance(high, datetime):
            if since > high:
                raise ctx.refuse("the first date of between is the earliest")
            return and_(times.ge(since), times.le(high))
        until = _start(high + timedelta(days=1))
        if since >= until:
            raise ctx.refuse("the first date of between is the earliest")
        return and_(times.ge(since), times.lt(until))
    moment = _moment(ctx, value)
    if isinstance(moment, datetime):
        return {"eq": times.eq, "gt": times.gt, "lt": times.lt}[op](moment)
    if op == "eq":
        return and_(times.ge(_start(moment)), times.lt(_start(moment + timedelta(days=1))))
    if op == "gt":
        return times.ge(_start(moment + timedelta(days=1)))
    return times.lt(_start(moment))


def _numbers(ctx: _Context, column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "between":
        low, high = _pair(ctx, value, _number)
        return column.between(low, high)
    number = _number(ctx, value)
    return {"eq": column == number, "gt": column > number, "lt": column < number}[op]


def _texts_of(ctx: _Context, column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """Text compares case-insensitively on both databases, as MariaDB's collation does anyway."""
    text = _text(ctx, value)
    if op == "contains":
        return column.contains(text, autoescape=True)
    if op == "starts_with":
        return column.startswith(text, autoescape=True)
    same = func.lower(column) == text.lower()
    return same if op == "is" else or_(not_(same), column.is_(None))


def _present(column: Any, textual: bool) -> ColumnElement[bool]:
    return and_(column.is_not(None), column != "") if textual else column.is_not(None)


# --- the fields ------------------------------------------------------------------------------------------


def _standard(ctx: _Context, name: str, op: str, value: Any) -> ColumnElement[bool]:
    kind = STANDARD_TYPES[name]
    if name == "tag":
        return _carried(ctx, op, value, ContactTag.contact_id, ContactTag.tag_id, _tag_id)
    if name == "label":
        return _carried(ctx, op, value, Conversation.contact_id, ConversationLabel.label_id, _label_id)
    if name == "stage":
        return _stage(ctx, op, value)
    if name == "owner":
        return _owner(ctx, op, value)
    if name == "consent":
        if op in ("is_empty", "is_set"):
            return false() if op == "is_empty" else true()
        if op == "in":
            states = [_consent(ctx, item) for item in _texts(ctx, value)]
            return Contact.marketing_consent.in_(states)
        state = _consent(ctx, value)
        return Contact.marketing_consent == state if op == "is" else Contact.marketing_consent != state
    if name == "lead_score":
        score = getattr(Contact, "lead_score", None)
        if score is None:
            raise ctx.refuse("SigDesk does not keep lead scores yet", "field")
        return _emptiness(op, score, False) if op in ("is_empty", "is_set") else _numbers(ctx, score, op, value)
    if kind == "date":
        times = _latest_times() if name == "last_contact_at" else _column_times(getattr(Contact, name))
        if op == "is_empty":
            return times.empty
        if op == "is_set":
            return not_(times.empty)
        return _dates(ctx, times, op, value, days_only=False)
    column = _text_column(name)
    if op in ("is_empty", "is_set"):
        return _emptiness(op, column, True)
    if name == "phone":
        return _phone(ctx, op, value)
    return _texts_of(ctx, column, op, value)


def _text_column(name: str) -> Any:
    if name == "name":
        return func.coalesce(func.nullif(Contact.display_name, ""), Contact.profile_name)
    if name == "phone":
        return Contact.wa_id
    return getattr(Contact, name)


def _emptiness(op: str, column: Any, textual: bool) -> ColumnElement[bool]:
    present = _present(column, textual)
    return present if op == "is_set" else not_(present)


def _phone(ctx: _Context, op: str, value: Any) -> ColumnElement[bool]:
    """A number in any format: `is` reads it as the contacts' search does; the others compare its digits."""
    text = _text(ctx, value)
    if op in ("is", "is_not"):
        try:
            number = normalise(text, ctx.default_country)
        except UserError as exc:
            raise ctx.refuse(str(exc)) from exc
        same = Contact.wa_id == number
        return same if op == "is" else or_(not_(same), Contact.wa_id.is_(None))
    digits = "".join(character for character in text if character.isdigit())
    if not digits:
        raise ctx.refuse("give some digits of the phone number")
    if op == "starts_with":
        return Contact.wa_id.startswith(digits.lstrip("0") or digits, autoescape=True)
    return Contact.wa_id.contains(digits, autoescape=True)


def _consent(ctx: _Context, value: Any) -> str:
    if value not in CONSENT_STATES:
        raise ctx.refuse(f"give one of {', '.join(CONSENT_STATES)}")
    return value


def _owner(ctx: _Context, op: str, value: Any) -> ColumnElement[bool]:
    column = Contact.owner_id
    if op in ("is_empty", "is_set"):
        return column.is_(None) if op == "is_empty" else column.is_not(None)
    if value == "none":
        return column.is_(None) if op == "is" else column.is_not(None)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**53:
        raise ctx.refuse('give a user\'s id, or "none"')
    return column == value if op == "is" else or_(column != value, column.is_(None))


def _tag_id(ctx: _Context, value: Any) -> int:
    tag = find_tag(ctx.session, _text(ctx, value))
    if tag is None:
        raise ctx.refuse(f"The tag '{value}' no longer exists; edit the segment")
    return tag.id


def _label_id(ctx: _Context, value: Any) -> int:
    name = _text(ctx, value)
    found = ctx.session.scalar(select(Label.id).where(func.lower(Label.name) == name.lower()).order_by(Label.id))
    if found is None:
        raise ctx.refuse(f"The label '{value}' no longer exists; edit the segment")
    return found


def _stage_id(ctx: _Context, value: Any) -> int:
    stage = find_stage(ctx.session, _text(ctx, value))
    if stage is None:
        raise ctx.refuse(f"The stage '{value}' no longer exists; edit the segment")
    return stage.id


def _carried(
    ctx: _Context, op: str, value: Any, contact_column: Any, id_column: Any, resolve: Callable[[_Context, Any], int]
) -> ColumnElement[bool]:
    """Tags (contact_tags) and conversation labels (through the contact's conversation)."""
    query = select(contact_column)
    if id_column is ConversationLabel.label_id:
        query = query.join(ConversationLabel, ConversationLabel.conversation_id == Conversation.id)
    if op in ("is_empty", "is_set"):
        inside = ctx.holds(contact_column, query)
        return inside if op == "is_set" else not_(inside)
    inside = ctx.holds(contact_column, query.where(id_column == resolve(ctx, value)))
    return inside if op == "has" else not_(inside)


def _stage(ctx: _Context, op: str, value: Any) -> ColumnElement[bool]:
    staged = select(ContactStage.contact_id)
    if op in ("is_empty", "is_set"):
        inside = ctx.holds(ContactStage.contact_id, staged)
        return inside if op == "is_set" else not_(inside)
    if op == "in":
        ids = [_stage_id(ctx, item) for item in _texts(ctx, value)]
        return ctx.holds(ContactStage.contact_id, staged.where(ContactStage.stage_id.in_(ids)))
    inside = ctx.holds(ContactStage.contact_id, staged.where(ContactStage.stage_id == _stage_id(ctx, value)))
    return inside if op == "is" else not_(inside)


def _custom(ctx: _Context, key: str, op: str, value: Any) -> ColumnElement[bool]:
    field = ctx.session.scalar(select(ContactField).where(ContactField.key == key))
    if field is None:
        raise ctx.refuse(f"The custom field '{key}' no longer exists; edit the segment", "field")
    kind = KIND_TYPES.get(field.kind, "text")
    _check_op(ctx, kind, op)
    column = {"number": ContactFieldValue.number_value, "boolean": ContactFieldValue.number_value}.get(
        kind, ContactFieldValue.date_value if kind == "date" else ContactFieldValue.text_value
    )
    textual = column is ContactFieldValue.text_value

    def having(condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return ctx.holds(
            ContactFieldValue.contact_id,
            select(ContactFieldValue.contact_id).where(ContactFieldValue.field_id == field.id, condition),
        )

    if op in ("is_empty", "is_set"):
        present = having(_present(column, textual))
        return present if op == "is_set" else not_(present)
    if kind == "text":
        if op == "is_not":
            return not_(having(func.lower(column) == _text(ctx, value).lower()))
        return having(_texts_of(ctx, column, op, value))
    if kind == "number":
        return having(_numbers(ctx, column, op, value))
    if kind == "date":
        return having(_dates(ctx, _column_times(column), op, value, days_only=True))
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ctx.refuse("give true or false")
        return having(column == (1.0 if value else 0.0))
    if kind == "choice":
        if op == "in":
            return having(column.in_(_texts(ctx, value)))
        same = having(column == _text(ctx, value))
        return same if op == "is" else not_(same)
    # choices: a JSON list in text_value; an option is there when its JSON string is.
    option = _text(ctx, value)
    spellings = {json.dumps(option, ensure_ascii=False), json.dumps(option)}
    has = having(or_(*(column.contains(spelling, autoescape=True) for spelling in sorted(spellings))))
    return has if op == "has" else not_(has)


def _check_op(ctx: _Context, kind: str, op: str) -> None:
    if op not in OPS[kind]:
        raise ctx.refuse(f"a {kind} field takes {', '.join(OPS[kind])}", "op")


def _compile_one(ctx: _Context) -> ColumnElement[bool]:
    condition = ctx.condition
    name, op = condition.field, condition.op
    if name.startswith(FIELD_PREFIX):
        return _custom(ctx, name[len(FIELD_PREFIX) :], op, condition.value)
    kind = STANDARD_TYPES.get(name)
    if kind is None:
        raise ctx.refuse(f"there is no field '{name}' (custom fields are named field:<key>)", "field")
    _check_op(ctx, kind, op)
    return _standard(ctx, name, op, condition.value)


def compile_filter(
    session: Session, definition: object, now: datetime | None = None, driving: bool = False
) -> ColumnElement[bool]:
    """The WHERE clause on Contact that the definition (a FilterDefinition, its dict or JSON) describes.

    `driving`: conditions on other tables as IN (subquery), which suits counting all matches; the default,
    correlated EXISTS, suits reading the first page in an index's order."""
    from sigdesk.contacts.fields import default_country

    parsed = parse_definition(definition)
    if not parsed.conditions:
        return true()
    context_now = now or utcnow()
    country = default_country(session) if any(item.field == "phone" for item in parsed.conditions) else None
    parts = [
        (_cost(condition.field), _compile_one(_Context(session, index, condition, context_now, country, driving)))
        for index, condition in enumerate(parsed.conditions)
    ]
    # Cheap tests first: both databases evaluate the terms of a WHERE mostly in the order written.
    ordered = [part for _, part in sorted(parts, key=lambda item: item[0])]
    return and_(*ordered) if parsed.match == "all" else or_(*ordered)


def _cost(field: str) -> int:
    """How dear a condition is to test per contact: a column, a primary-key probe, a value row, a join."""
    if field in ("tag", "stage"):
        return 1
    if field.startswith(FIELD_PREFIX):
        return 2
    return 3 if field == "label" else 0


def segments_using_field(session: Session, key: str) -> list[str]:
    """The names of the segments with a condition on custom field `key`: deleting it would break them."""
    wanted = f"{FIELD_PREFIX}{key}"
    names = []
    for name, stored in session.execute(select(Segment.name, Segment.definition).order_by(Segment.name)):
        try:
            conditions = json.loads(stored).get("conditions", [])
        except (ValueError, AttributeError):
            continue
        if any(isinstance(item, dict) and item.get("field") == wanted for item in conditions):
            names.append(name)
    return names
