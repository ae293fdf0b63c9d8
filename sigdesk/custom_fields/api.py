"""Custom contact fields in the REST API (/api/v1/contact-fields): everyone who works the contacts reads the
definitions; admins (fields.manage) define, change and delete them. Values are part of each contact's
record (`fields` in /contacts). Every write calls the same command as the Settings page."""

from __future__ import annotations

from flask import Blueprint, request

from sigdesk.custom_fields import commands, services
from sigdesk.custom_fields.schemas import FieldEdit, FieldList, FieldPath, FieldRemoved, NewField
from sigdesk.custom_fields.services import FieldDefinition
from sigdesk.openapi import operation
from sigdesk.web import acting, db_session, requires, writing

bp = Blueprint("custom_fields_api", __name__, url_prefix="/api/v1")

# Parts of a FieldEdit where null means "leave it" (for pattern and currency it means "none").
_KEEP_ON_NULL = ("label", "key", "kind", "required", "options", "position")


@bp.get("/contact-fields")
@requires("contacts.view")
@operation("listContactFields", (200, FieldList))
def list_fields():
    """Every custom contact field, in order"""
    return FieldList(items=services.definitions(db_session()))


@bp.post("/contact-fields")
@requires("fields.manage")
@operation("createContactField", (201, FieldDefinition), json=NewField, errors=(409,))
def create_field():
    """Define a custom contact field (admins)

    `options` is for the choice kinds, `currency` for currency, `pattern` for text and link; a key
    already taken is a 409.
    """
    body: NewField = request.context.json  # type: ignore[attr-defined]
    with writing() as session:
        row = commands.define_field(
            session,
            acting(),
            body.label,
            body.kind,
            key=body.key,
            required=body.required,
            pattern=body.pattern,
            options=body.options,
            currency=body.currency,
            position=body.position,
        )
        return FieldDefinition.of(row), 201


@bp.get("/contact-fields/<field_id>")
@requires("contacts.view")
@operation("getContactField", (200, FieldDefinition), path=FieldPath, errors=(404,))
def get_field(field_id: int):
    """A custom contact field"""
    return FieldDefinition.of(services.get_field(db_session(), field_id))


@bp.patch("/contact-fields/<field_id>")
@requires("fields.manage")
@operation("updateContactField", (200, FieldDefinition), path=FieldPath, json=FieldEdit, errors=(404, 409))
def update_field(field_id: int):
    """Change a custom contact field (admins)

    The key and the kind change only while no contact has a value (409 otherwise); a choice some
    contact has cannot be taken out of the options (409).
    """
    body: FieldEdit = request.context.json  # type: ignore[attr-defined]
    given = {
        part: value
        for part, value in body.model_dump(exclude_unset=True).items()
        if not (value is None and part in _KEEP_ON_NULL)
    }
    with writing() as session:
        row = commands.update_field(session, acting(), field_id, **given)
        return FieldDefinition.of(row)


@bp.delete("/contact-fields/<field_id>")
@requires("fields.manage")
@operation("deleteContactField", (200, FieldRemoved), path=FieldPath, errors=(404,))
def delete_field(field_id: int):
    """Delete a custom contact field and every contact's value of it (admins)"""
    with writing() as session:
        values = commands.delete_field(session, acting(), field_id)
    return FieldRemoved(id=field_id, values=values)
