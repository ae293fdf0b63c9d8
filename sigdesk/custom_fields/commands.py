"""Changes to custom contact field definitions, one function each, taking (session, actor, ...); the caller
commits. Admins keep the definitions (fields.manage); each command checks the actor's role itself, so the
CLI cannot step past the rule the pages and the API declare. Every change is audited and announced.

A field's key and kind are how its stored values are read: once any contact has a value, neither may
change (the values would be read as something else), and the refusal says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.positions import place
from sigdesk.custom_fields.services import (
    clean_currency,
    clean_key,
    clean_kind,
    clean_label,
    clean_options,
    clean_pattern,
    field_users,
    find_field,
    get_field,
    key_from_label,
    options_of,
    value_count,
)
from sigdesk.db import flush_unique, utcnow
from sigdesk.errors import Conflict, UserError
from sigdesk.events.catalogue import ContactFieldChanged, ContactFieldDefined, ContactFieldDeleted
from sigdesk.events.outbox import record
from sigdesk.models import ContactField, ContactFieldValue
from sigdesk.roles import can

MAX_FIELDS = 200
UNSET: Any = object()  # update_field: this part stays as it is


def _require(actor: Actor) -> None:
    if actor.user is not None and not can(actor.user.role, "fields.manage"):
        raise UserError("Your role does not allow this", status=403)


def _ordered(session: Session) -> list[ContactField]:
    return list(session.scalars(select(ContactField).order_by(ContactField.position, ContactField.id)))


def _free_key(session: Session, key: str, own_id: int | None = None) -> None:
    taken = find_field(session, key)
    if taken is not None and taken.id != own_id:
        raise Conflict(f"There already is a field with the key '{key}'", field="key")


def define_field(
    session: Session,
    actor: Actor,
    label: object,
    kind: object,
    *,
    key: object = None,
    required: bool = False,
    pattern: object = None,
    options: object = None,
    currency: object = None,
    position: int | None = None,
) -> ContactField:
    """A new field, last unless `position` (1 first) says where. Without a key, one is made of the label."""
    _require(actor)
    label = clean_label(label)
    kind = clean_kind(kind)
    key = clean_key(key if key not in (None, "") else key_from_label(label))
    pattern = clean_pattern(pattern, kind)
    options = clean_options(options, kind)
    currency = clean_currency(currency, kind)
    if not isinstance(required, bool):
        raise UserError("'required' is true or false", field="required")
    _free_key(session, key)
    fields = _ordered(session)
    if len(fields) >= MAX_FIELDS:
        raise Conflict(f"There are already {MAX_FIELDS} contact fields", field="label")
    row = ContactField(
        key=key,
        label=label,
        kind=kind,
        required=required,
        pattern=pattern,
        options=json.dumps(options, ensure_ascii=False) if options else None,
        currency=currency,
        position=len(fields) + 1,
        created_at=utcnow(),
    )
    session.add(row)
    flush_unique(session, f"There already is a field with the key '{key}'", "key")
    if position is not None:
        place(fields, row, position)
        session.flush()
    record_by(
        session,
        actor,
        "contact_field.define",
        f"contact_field {row.id}",
        {"key": key, "label": label, "kind": kind, "required": required, "position": row.position},
    )
    record(session, ContactFieldDefined(row.id, key))
    return row


def update_field(
    session: Session,
    actor: Actor,
    field_id: int,
    *,
    label: object = UNSET,
    key: object = UNSET,
    kind: object = UNSET,
    required: object = UNSET,
    pattern: object = UNSET,
    options: object = UNSET,
    currency: object = UNSET,
    position: object = UNSET,
) -> ContactField:
    """Change the parts given and leave the rest. The key and kind change only while no contact has a
    value; a choice in use cannot be taken out of the options. Only real changes are audited."""
    _require(actor)
    row = get_field(session, field_id)
    changes: dict[str, Any] = {}
    new_kind = row.kind if kind is UNSET else clean_kind(kind)
    new_key = row.key if key is UNSET else clean_key(key)
    in_use = value_count(session, row.id)
    if (new_kind != row.kind or new_key != row.key) and in_use:
        what = "kind" if new_kind != row.kind else "key"
        raise Conflict(
            f"{in_use} contact(s) have a value in this field, so its {what} cannot change "
            "(add a new field instead, or clear the values first)",
            field=what,
        )
    if new_key != row.key:
        _free_key(session, new_key, row.id)
        changes["key"] = (row.key, new_key)
    if new_kind != row.kind:
        changes["kind"] = (row.kind, new_kind)
    if label is not UNSET:
        new_label = clean_label(label)
        if new_label != row.label:
            changes["label"] = (row.label, new_label)
    if required is not UNSET:
        if not isinstance(required, bool):
            raise UserError("'required' is true or false", field="required")
        if required != bool(row.required):
            changes["required"] = (bool(row.required), required)
    kind_changed = new_kind != row.kind
    # A kind change re-checks the parts that depend on it; parts not given carry over if they still fit.
    new_pattern = clean_pattern(
        row.pattern if pattern is UNSET and new_kind in ("text", "link") else None if pattern is UNSET else pattern,
        new_kind,
    )
    if new_pattern != row.pattern:
        changes["pattern"] = (row.pattern, new_pattern)
    old_options = options_of(row)
    wanted_options: object = options
    if options is UNSET:
        wanted_options = old_options if new_kind in ("choice", "choices") else None
    new_options = clean_options(wanted_options, new_kind) if (options is not UNSET or kind_changed) else old_options
    if new_options != old_options:
        _keep_used_options(session, row, old_options, new_options)
        changes["options"] = (old_options, new_options)
    if currency is not UNSET or kind_changed:
        wanted = currency if currency is not UNSET else (row.currency if new_kind == "currency" else None)
        new_currency = clean_currency(wanted, new_kind)
        if new_currency != row.currency:
            changes["currency"] = (row.currency, new_currency)
    if position is not UNSET and position is not None:
        before = row.position
        place([item for item in _ordered(session) if item.id != row.id], row, position)
        if row.position != before:
            changes["position"] = (before, row.position)
    if not changes:
        return row
    for part, (_old, new) in changes.items():
        if part == "options":
            row.options = json.dumps(new, ensure_ascii=False) if new else None
        elif part != "position":
            setattr(row, part, new)
    flush_unique(session, f"There already is a field with the key '{row.key}'", "key")
    record_by(
        session,
        actor,
        "contact_field.update",
        f"contact_field {row.id}",
        {part: {"from": old, "to": new} for part, (old, new) in changes.items()},
    )
    record(session, ContactFieldChanged(row.id, tuple(sorted(changes))))
    return row


def _keep_used_options(session: Session, row: ContactField, old: Sequence[str], new: Sequence[str]) -> None:
    """Refuse taking out a choice some contact has; renaming one means adding the new and clearing the old."""
    gone = set(old) - set(new)
    if not gone:
        return
    used: set[str] = set()
    for text in session.scalars(
        select(ContactFieldValue.text_value).where(ContactFieldValue.field_id == row.id).distinct()
    ):
        if row.kind == "choices":
            try:
                found = json.loads(text or "[]")
            except ValueError:
                found = []
            used.update(str(item) for item in found if isinstance(found, list))
        elif text is not None:
            used.add(text)
    in_use = sorted(gone & used)
    if in_use:
        raise Conflict(
            f"Contacts have the choice '{in_use[0]}', so it cannot be taken out of the options", field="options"
        )


def deletion_impact(session: Session, field_id: int) -> tuple[ContactField, int, list[str]]:
    """What deleting a field would take: the field, how many contacts have a value, and the saved segments
    (or other things registered with services.register_field_users) that refer to it."""
    row = get_field(session, field_id)
    return row, value_count(session, row.id), field_users(session, row.key)


def delete_field(session: Session, actor: Actor, field_id: int) -> int:
    """Delete the field and every contact's value of it; returns how many contacts had a value."""
    _require(actor)
    row, values, users = deletion_impact(session, field_id)
    session.execute(delete(ContactFieldValue).where(ContactFieldValue.field_id == row.id))
    key, label = row.key, row.label
    session.delete(row)
    session.flush()
    for number, item in enumerate(_ordered(session), start=1):
        item.position = number
    session.flush()
    record_by(
        session,
        actor,
        "contact_field.delete",
        f"contact_field {field_id}",
        {"key": key, "label": label, "values": values, "referenced_by": users},
    )
    record(session, ContactFieldDeleted(field_id, key, values))
    return values
