"""Reading custom contact fields: their definitions, each contact's values (batched, one query per call),
and writing a contact's values for the contact commands, which audit and announce the change.

Other features read fields through here: segments filter and sort with `condition` and `sort_value`,
imports and merges write with `set_values`, exports read with `values_for`. A field's definition is a
`FieldDefinition`, a frozen copy that outlives the session.
"""

from __future__ import annotations

import json
import re
import re._constants as sre  # the parsed form of an expression, to judge its cost (see _too_slow)
import re._parser as sre_parser
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, ScalarSelect, delete, func, select
from sqlalchemy.orm import Session

from sigdesk.custom_fields.values import EMPTY, compile_pattern, parse, to_json
from sigdesk.errors import NotFound, UserError
from sigdesk.models import Contact, ContactField, ContactFieldValue
from sigdesk.models.custom_field import FIELD_KINDS

MAX_LABEL = 64
MAX_KEY = 64
MAX_PATTERN = 200
MAX_OPTIONS = 100
MAX_OPTION = 100
KIND_LABELS = {
    "text": "Text",
    "number": "Number",
    "currency": "Amount of money",
    "date": "Date",
    "boolean": "Yes/no",
    "choice": "Single choice",
    "choices": "Multiple choice",
    "link": "Link",
}
# Keys that would read as a standard field (or the record's own parts) in imports, exports and filters.
RESERVED_KEYS = frozenset(
    {
        "id",
        "phone",
        "wa_id",
        "user_id",
        "name",
        "profile_name",
        "display_name",
        "email",
        "company",
        "city",
        "country",
        "language",
        "notes",
        "owner",
        "owner_id",
        "tags",
        "stage",
        "fields",
        "created_at",
        "updated_at",
        "marketing_consent",
        "opted_out_marketing",
    }
)
_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# A pattern may hold at most this many open-ended repetitions (+, *, {n,}): each one more is another
# power of the value's length in the worst case.
MAX_OPEN_REPEATS = 6


class FieldDefinition(BaseModel):
    """A custom field as others read it. `options` lists the choices of the two choice kinds, in order."""

    model_config = ConfigDict(frozen=True)

    id: int
    key: str = Field(description="How the API, imports and filters name the field; contact JSON has it in `fields`")
    label: str = Field(description="What people read")
    kind: str = Field(description="text, number, currency, date, boolean, choice, choices or link")
    required: bool = Field(description="Every contact created or edited must have a value")
    pattern: str | None = Field(description="A regular expression text and link values must match in full")
    options: list[str] = Field(description="The choices (choice and choices kinds)")
    currency: str | None = Field(description="ISO 4217 code of a currency field")
    position: int = Field(description="Where the field comes among the others, 1 first")

    @classmethod
    def of(cls, row: ContactField) -> "FieldDefinition":
        return cls(
            id=row.id,
            key=row.key,
            label=row.label,
            kind=row.kind,
            required=bool(row.required),
            pattern=row.pattern,
            options=options_of(row),
            currency=row.currency,
            position=row.position,
        )


def options_of(row: ContactField) -> list[str]:
    if not row.options:
        return []
    try:
        found = json.loads(row.options)
    except ValueError:
        return []
    return [str(item) for item in found] if isinstance(found, list) else []


def definitions(session: Session) -> list[FieldDefinition]:
    """Every field, in the admins' order."""
    return [FieldDefinition.of(row) for row in _ordered(session)]


def _ordered(session: Session) -> list[ContactField]:
    return list(session.scalars(select(ContactField).order_by(ContactField.position, ContactField.id)))


def get_field(session: Session, field_id: int, field: str = "field_id") -> ContactField:
    row = session.get(ContactField, field_id)
    if row is None:
        raise NotFound(f"There is no contact field {field_id}", field=field)
    return row


def find_field(session: Session, key: str) -> ContactField | None:
    return session.scalar(select(ContactField).where(ContactField.key == key))


def value_counts(session: Session) -> dict[int, int]:
    """How many contacts have a value, by field id."""
    rows = session.execute(select(ContactFieldValue.field_id, func.count()).group_by(ContactFieldValue.field_id))
    return {field_id: count for field_id, count in rows}


def value_count(session: Session, field_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(ContactFieldValue).where(ContactFieldValue.field_id == field_id)
        )
        or 0
    )


# --- who else refers to a field (saved segments) -----------------------------------------------------

# Functions (session, key) -> names of the things that use the field, registered by features that keep
# references to fields (segments), so deleting a field can say what it breaks without this package
# importing theirs.
_FIELD_USERS: list[Callable[[Session, str], list[str]]] = []


def register_field_users(finder: Callable[[Session, str], list[str]]) -> None:
    """Tell the delete confirmation about references kept elsewhere: `finder(session, key)` names them."""
    if finder not in _FIELD_USERS:
        _FIELD_USERS.append(finder)


def field_users(session: Session, key: str) -> list[str]:
    return [name for finder in _FIELD_USERS for name in finder(session, key)]


# --- definition rules (shared by the commands and the pages) -----------------------------------------


def clean_label(label: object) -> str:
    if not isinstance(label, str):
        raise UserError("Give the field's label", field="label")
    label = label.strip()
    if not label or len(label) > MAX_LABEL:
        raise UserError(f"A field's label is 1 to {MAX_LABEL} characters", field="label")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in label):
        raise UserError("A field's label is one line of visible text", field="label")
    return label


def key_from_label(label: str) -> str:
    """A key made from the label: 'Customer number' -> customer_number (accents dropped)."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    key = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")[:MAX_KEY].strip("_")
    if not key or not key[0].isalpha():
        key = f"field_{key}".strip("_")[:MAX_KEY]
    return key


def clean_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key.strip()):
        raise UserError(
            "A field's key is 1 to 64 lower-case letters, digits and _, starting with a letter", field="key"
        )
    key = key.strip()
    if key in RESERVED_KEYS:
        raise UserError(f"'{key}' is a standard contact field; choose another key", field="key")
    return key


def clean_kind(kind: object) -> str:
    if kind not in FIELD_KINDS:
        raise UserError(f"A field's kind is one of: {', '.join(FIELD_KINDS)}", field="kind")
    return str(kind)


def clean_pattern(pattern: object, kind: str) -> str | None:
    """A validation pattern: only for text and link fields, bounded, compiled now so a bad one is refused
    here, and without the shapes that can take exponential time (nested quantifiers, back-references)."""
    if pattern is None or (isinstance(pattern, str) and not pattern.strip()):
        return None
    if not isinstance(pattern, str):
        raise UserError("The pattern is a regular expression, as text", field="pattern")
    if kind not in ("text", "link"):
        raise UserError("Only text and link fields take a pattern", field="pattern")
    if len(pattern) > MAX_PATTERN:
        raise UserError(f"A pattern is at most {MAX_PATTERN} characters", field="pattern")
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("The pattern contains text that is not valid Unicode", field="pattern") from None
    compile_pattern(pattern)
    if _too_slow(pattern):
        raise UserError(
            "The pattern repeats a repetition or a choice (such as (a+)+ or (ab|a)*), refers back to a group, "
            f"or has more than {MAX_OPEN_REPEATS} open-ended repetitions, which can take too long to check; "
            "write it more simply",
            field="pattern",
        )
    return pattern


def _too_slow(pattern: str) -> bool:
    """Whether the expression has a shape whose matching can take exponential (or steeply polynomial) time
    on a near miss: a repetition inside a repetition, alternatives inside a repetition, a back-reference,
    or too many open-ended repetitions. Read from the parsed expression, so nesting and escapes count as
    the matcher sees them. Values are at most 500 characters, which bounds the rest."""
    try:
        tree = sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return True
    open_repeats = 0

    def walk(items: Any, inside_repeat: bool) -> bool:
        nonlocal open_repeats
        for op, argument in items:
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
                _low, high, sub = argument
                if high == sre.MAXREPEAT:
                    open_repeats += 1
                if op is sre.POSSESSIVE_REPEAT or high <= 1:
                    if walk(sub, inside_repeat):
                        return True
                elif inside_repeat or walk(sub, True):
                    return True
            elif op is sre.BRANCH:
                if inside_repeat or any(walk(alternative, inside_repeat) for alternative in argument[1]):
                    return True
            elif op is sre.SUBPATTERN:
                if walk(argument[-1], inside_repeat):
                    return True
            elif op in (sre.ASSERT, sre.ASSERT_NOT):
                if walk(argument[1], inside_repeat):
                    return True
            elif op is sre.ATOMIC_GROUP:
                if walk(argument, False):
                    return True
            elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS, sre.GROUPREF_IGNORE):
                return True
        return False

    return walk(tree, False) or open_repeats > MAX_OPEN_REPEATS


def clean_options(options: object, kind: str) -> list[str]:
    """The choices of a choice field: 1 to 100 distinct names (whatever their case), in order."""
    if kind not in ("choice", "choices"):
        if options not in (None, []):
            raise UserError("Only choice fields take options", field="options")
        return []
    if not isinstance(options, list) or not options:
        raise UserError("Give the choices, one or more", field="options")
    if len(options) > MAX_OPTIONS:
        raise UserError(f"A field has at most {MAX_OPTIONS} choices", field="options")
    cleaned: list[str] = []
    seen: set[str] = set()
    for option in options:
        if not isinstance(option, str):
            raise UserError("Each choice is text", field="options")
        option = option.strip()
        if not option or len(option) > MAX_OPTION:
            raise UserError(f"Each choice is 1 to {MAX_OPTION} characters", field="options")
        if _has_control(option) or ";" in option or (kind == "choices" and "," in option):
            raise UserError("A choice is one line without ';' (and without ',' in a multiple choice)", field="options")
        if option.casefold() in seen:
            raise UserError(f"The choice '{option}' is given twice", field="options")
        seen.add(option.casefold())
        cleaned.append(option)
    if len(json.dumps(cleaned, ensure_ascii=False)) > 60_000:
        raise UserError("The choices are too long together", field="options")
    return cleaned


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in text)


def clean_currency(currency: object, kind: str) -> str | None:
    if kind != "currency":
        if currency not in (None, ""):
            raise UserError("Only amount-of-money fields take a currency", field="currency")
        return None
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency.strip().upper()):
        raise UserError("Give the currency as a three-letter ISO code such as EUR or USD", field="currency")
    return currency.strip().upper()


# --- values ------------------------------------------------------------------------------------------


def values_for(session: Session, contact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each contact's values by field key, in the admins' order of fields; a contact without values gets an
    empty dict. One query, found by the primary key (contact_id, field_id), read as plain columns: a page of
    50 contacts with 10 values each cost ~11 ms as joined ORM entities, most of it building them."""
    ids = sorted(set(contact_ids))
    found: dict[int, dict[str, Any]] = {contact_id: {} for contact_id in ids}
    if not ids:
        return found
    rows = session.execute(
        select(
            ContactFieldValue.contact_id,
            ContactFieldValue.text_value,
            ContactFieldValue.number_value,
            ContactFieldValue.date_value,
            *ContactField.__table__.c,
        )
        .join(ContactField, ContactField.id == ContactFieldValue.field_id)
        .where(ContactFieldValue.contact_id.in_(ids))
        .order_by(ContactField.position, ContactField.id)
    )
    cache: dict[int, FieldDefinition] = {}
    for row in rows:
        # The row holds the field's columns by their names, which is all FieldDefinition.of reads.
        definition = cache.get(row.id) or cache.setdefault(row.id, FieldDefinition.of(cast(ContactField, row)))
        shown = to_json(definition, row.text_value, row.number_value, row.date_value)
        if shown is not None:
            found[row.contact_id][definition.key] = shown
    return found
    fields = {definition.id: definition for definition in definitions(session)}
    order = {field_id: place for place, field_id in enumerate(fields)}
    rows = session.execute(
        select(
            ContactFieldValue.contact_id,
            ContactFieldValue.field_id,
            ContactFieldValue.text_value,
            ContactFieldValue.number_value,
            ContactFieldValue.date_value,
        ).where(ContactFieldValue.contact_id.in_(ids))
    ).all()
    for contact_id, field_id, text, number, day in sorted(rows, key=lambda row: order.get(row[1], len(order))):
        definition = fields.get(field_id)
        if definition is None:
            continue
        shown = to_json(definition, text, number, day)
        if shown is not None:
            found[contact_id][definition.key] = shown
    return found
    rows = session.execute(
        select(ContactFieldValue, ContactField)
        .join(ContactField, ContactField.id == ContactFieldValue.field_id)
        .where(ContactFieldValue.contact_id.in_(ids))
        .order_by(ContactField.position, ContactField.id)
    )
    cache: dict[int, FieldDefinition] = {}
    for value, row in rows:
        definition = cache.get(row.id) or cache.setdefault(row.id, FieldDefinition.of(row))
        shown = to_json(definition, value.text_value, value.number_value, value.date_value)
        if shown is not None:
            found[value.contact_id][definition.key] = shown
    return found


def set_values(
    session: Session,
    contact_id: int,
    given: Mapping[str, Any],
    *,
    from_text: bool = False,
    creating: bool = False,
) -> dict[str, tuple[Any, Any]]:
    """Write the contact's values for the keys given (the others stay); null or empty clears one.

    Refusals name `fields.<key>`: an unknown key, a bad value, clearing a required field, and, with
    `creating`, a required field left out. Returns what changed, key -> (old, new) as JSON values. The
    caller audits and announces (the contact's own command), so nothing is recorded here.
    """
    if not isinstance(given, Mapping):
        raise UserError("'fields' is an object of field keys and values", field="fields")
    by_key = {definition.key: definition for definition in definitions(session)}
    unknown = sorted(key for key in given if key not in by_key)
    if unknown:
        raise UserError(f"There is no contact field '{str(unknown[0])[:64]}'", field=f"fields.{unknown[0]}")
    parsed = {key: parse(by_key[key], raw, from_text=from_text) for key, raw in given.items()}
    for key, stored in parsed.items():
        if stored == EMPTY and by_key[key].required:
            raise UserError(f"{by_key[key].label} is required", field=f"fields.{key}")
    if creating:
        missing = [key for key, definition in by_key.items() if definition.required and key not in parsed]
        if missing:
            raise UserError(f"{by_key[missing[0]].label} is required", field=f"fields.{missing[0]}")
    if not parsed:
        return {}
    field_ids = [by_key[key].id for key in parsed]
    current = {
        row.field_id: row
        for row in session.scalars(
            select(ContactFieldValue).where(
                ContactFieldValue.contact_id == contact_id, ContactFieldValue.field_id.in_(field_ids)
            )
        )
    }
    changed: dict[str, tuple[Any, Any]] = {}
    for key, stored in parsed.items():
        definition = by_key[key]
        row = current.get(definition.id)
        old = to_json(definition, row.text_value, row.number_value, row.date_value) if row is not None else None
        new = to_json(definition, *stored)
        if old == new and (row is None) == (stored == EMPTY):
            continue
        if stored == EMPTY:
            session.execute(
                delete(ContactFieldValue).where(
                    ContactFieldValue.contact_id == contact_id, ContactFieldValue.field_id == definition.id
                )
            )
            if row is not None:
                session.expunge(row)
        elif row is None:
            session.add(
                ContactFieldValue(
                    contact_id=contact_id,
                    field_id=definition.id,
                    text_value=stored[0],
                    number_value=stored[1],
                    date_value=stored[2],
                )
            )
        else:
            row.text_value, row.number_value, row.date_value = stored
        changed[key] = (old, new)
    session.flush()
    return changed


# --- filters and sorts (for contact lists and segments) ----------------------------------------------

OPERATORS = ("is", "is_not", "contains", "lt", "le", "gt", "ge", "has", "set", "unset")


def column_for(definition: FieldDefinition) -> Any:
    """The column that holds this kind's values."""
    if definition.kind in ("number", "currency", "boolean"):
        return ContactFieldValue.number_value
    if definition.kind == "date":
        return ContactFieldValue.date_value
    return ContactFieldValue.text_value


def sort_value(definition: FieldDefinition) -> ScalarSelect[Any]:
    """The contact's value of this field as an expression of a contact query, to order by (null: none)."""
    return (
        select(column_for(definition))
        .where(ContactFieldValue.contact_id == Contact.id, ContactFieldValue.field_id == definition.id)
        .scalar_subquery()
    )


def condition(definition: FieldDefinition, operator: str, value: Any = None) -> ColumnElement[bool]:
    """Where a contact's value of this field compares so with `value` (a JSON value, checked like an input):
    is, is_not, contains (text), lt/le/gt/ge (numbers, amounts, dates), has (a multiple choice holds
    the choice), set, unset. A condition for contact queries."""
    if operator not in OPERATORS:
        raise UserError(f"A field filter is one of: {', '.join(OPERATORS)}", field="operator")
    rows = select(ContactFieldValue.contact_id).where(ContactFieldValue.field_id == definition.id)
    if operator == "set":
        return Contact.id.in_(rows)
    if operator == "unset":
        return Contact.id.not_in(rows)
    column = column_for(definition)
    if operator == "has":
        if definition.kind != "choices":
            raise UserError("'has' is for multiple choice fields", field="operator")
        option = parse(definition.model_copy(update={"kind": "choice"}), value)[0]
        return Contact.id.in_(rows.where(column.contains(json.dumps(option, ensure_ascii=False), autoescape=True)))
    if operator == "contains":
        if definition.kind not in ("text", "link"):
            raise UserError("'contains' is for text and link fields", field="operator")
        if not isinstance(value, str) or not value.strip():
            raise UserError("Give the text to look for", field="value")
        return Contact.id.in_(rows.where(column.contains(value.strip(), autoescape=True)))
    loose = definition.model_copy(update={"pattern": None})
    stored = parse(loose, value)
    target = stored[0] if column is ContactFieldValue.text_value else stored[1] if stored[1] is not None else stored[2]
    if target is None:
        raise UserError("Give the value to compare with", field="value")
    if operator in ("lt", "le", "gt", "ge") and definition.kind not in ("number", "currency", "date"):
        raise UserError("Comparing is for numbers, amounts and dates", field="operator")
    compare = {
        "is": column == target,
        "is_not": column != target,
        "lt": column < target,
        "le": column <= target,
        "gt": column > target,
        "ge": column >= target,
    }[operator]
    if operator == "is_not":
        return Contact.id.not_in(rows.where(column == target))
    return Contact.id.in_(rows.where(compare))
