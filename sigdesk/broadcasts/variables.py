"""Per-recipient template variables: `{contact.name|there}` in a broadcast's text, filled from each contact.

An expression is text with names in single braces: {contact.name}, {contact.first_name}, {contact.phone},
{contact.email}, {contact.company}, {contact.city} and {contact.fields.KEY} (a custom field), each with an
optional fallback after a bar. A recipient for whom a name has no value and no fallback is not sent a
message with a hole in it: fill() answers the reason instead, and the recipient is skipped with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.custom_fields import services as custom_fields
from sigdesk.errors import UserError
from sigdesk.models import Contact

STANDARD = ("name", "first_name", "phone", "email", "company", "city")
# What WhatsApp refuses inside a variable: new lines, tabs, more than four spaces in a row.
_BLANKS = re.compile(r"[\r\n\t]+| {4,}")
_NAME = re.compile(r"contact\.(?:(" + "|".join(STANDARD) + r")|fields\.([a-z0-9_]{1,64}))")
_BRACES = re.compile(r"\{([^{}]*)\}")
BODY = "body"


@dataclass(frozen=True)
class Piece:
    """Literal `text`, or a contact value by `name` ("name", "fields.city") with its `fallback`."""

    text: str | None = None
    name: str | None = None
    fallback: str | None = None


@dataclass(frozen=True)
class ContactFacts:
    """What a recipient's variables may use, read once per batch (facts_for)."""

    contact_id: int
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    company: str | None = None
    city: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def first_name(self) -> str | None:
        return self.name.split()[0] if self.name and self.name.split() else None

    def value(self, name: str) -> str | None:
        raw = self.fields.get(name[len("fields.") :]) if name.startswith("fields.") else getattr(self, name)
        return _text(raw)


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        text = "yes" if raw else "no"
    elif isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))
    elif isinstance(raw, (list, tuple)):
        text = ", ".join(str(item) for item in raw)
    else:
        text = str(raw)
    text = _BLANKS.sub(" ", text).strip()
    return text or None


def parse(expression: str, field: str = "template.variables") -> list[Piece]:
    """The pieces of an expression; an unknown name or a stray brace is a UserError naming `field`."""
    if not isinstance(expression, str):
        raise UserError("A variable must be text", field=field)
    try:
        return list(_parse(expression))
    except ValueError as exc:
        raise UserError(str(exc), field=field) from None


@lru_cache(maxsize=1024)
def _parse(expression: str) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    position = 0
    for match in _BRACES.finditer(expression):
        _literal(pieces, expression[position : match.start()])
        inner = match.group(1)
        name, bar, fallback = inner.partition("|")
        found = _NAME.fullmatch(name.strip())
        if found is None:
            raise ValueError(
                f"{{{inner}}} is not a contact value; use {{contact.name}}, {{contact.first_name}}, "
                "{contact.phone}, {contact.email}, {contact.company}, {contact.city} or {contact.fields.KEY}"
            )
        key = found.group(1) or f"fields.{found.group(2)}"
        pieces.append(Piece(name=key, fallback=_text(fallback) if bar else None))
        position = match.end()
    _literal(pieces, expression[position:])
    return tuple(pieces)


def _literal(pieces: list[Piece], text: str) -> None:
    if not text:
        return
    if "{" in text or "}" in text:
        raise ValueError("A variable has an unmatched curly brace; contact values are written {contact.name}")
    pieces.append(Piece(text=text))


def normalise(variables: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Per component: {"1": "..."} alone is the body's; {"body": {...}, "header": {...}} is kept as given."""
    result: dict[str, dict[str, str]] = {}
    for key, value in (variables or {}).items():
        if isinstance(value, Mapping):
            result.setdefault(str(key), {}).update({str(k): v for k, v in value.items()})
        else:
            result.setdefault(BODY, {})[str(key)] = value
    return result


def check(variables: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Every expression parses; answers the normalised variables. Errors name template.variables.<part>.<key>."""
    normal = normalise(variables)
    for component, values in normal.items():
        for placeholder, expression in values.items():
            parse(expression, field=f"template.variables.{component}.{placeholder}")
    return normal


def custom_keys(variables: Mapping[str, Any] | None) -> dict[str, str]:
    """The custom field keys the variables use, each with the field that uses it first (to name in an error)."""
    keys: dict[str, str] = {}
    for component, values in normalise(variables).items():
        for placeholder, expression in values.items():
            for piece in parse(expression, field=f"template.variables.{component}.{placeholder}"):
                if piece.name and piece.name.startswith("fields."):
                    keys.setdefault(piece.name[len("fields.") :], f"template.variables.{component}.{placeholder}")
    return keys


def fill(variables: Mapping[str, Any] | None, facts: ContactFacts) -> dict[str, dict[str, str]] | str:
    """The per-component params for message_templates.services.template_content, or why they cannot be
    filled for this contact ("no value for contact.fields.city")."""
    params: dict[str, dict[str, str]] = {}
    for component, values in normalise(variables).items():
        filled: dict[str, str] = {}
        for placeholder, expression in values.items():
            parts: list[str] = []
            for piece in _parse(expression):
                if piece.text is not None:
                    parts.append(piece.text)
                    continue
                value = facts.value(piece.name or "") or piece.fallback
                if value is None:
                    return f"no value for contact.{piece.name}"
                parts.append(value)
            text = _BLANKS.sub(" ", "".join(parts)).strip()
            if not text:
                return f"variable {placeholder} of the {component} is empty"
            filled[placeholder] = text
        params[component] = filled
    return params


def always_filled(variables: Mapping[str, Any] | None) -> bool:
    """True when fill() can give no reason for anyone: every contact value has a fallback, and no expression
    is blank text. Then who may receive a broadcast does not depend on the contacts' values, and freezing
    an audience of thousands need not read them (a present value is never blank, see _text)."""
    try:
        for values in normalise(variables).values():
            for expression in values.values():
                pieces = _parse(expression)
                if any(piece.name is not None and piece.fallback is None for piece in pieces):
                    return False
                if not any(piece.name is not None or (piece.text or "").strip() for piece in pieces):
                    return False
    except (ValueError, TypeError, UserError):
        return False
    return True


def facts_for(session: Session, contact_ids: Iterable[int]) -> dict[int, ContactFacts]:
    """Each contact's values, read in one query for the contacts and one for their custom fields."""
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(
            Contact.id,
            Contact.display_name,
            Contact.profile_name,
            Contact.wa_id,
            Contact.email,
            Contact.company,
            Contact.city,
        ).where(Contact.id.in_(ids))
    ).all()
    custom = custom_fields.values_for(session, [row.id for row in rows])
    return {
        row.id: ContactFacts(
            contact_id=row.id,
            name=_text(row.display_name or row.profile_name),
            phone=f"+{row.wa_id}" if row.wa_id else None,
            email=row.email,
            company=_text(row.company),
            city=_text(row.city),
            fields=custom.get(row.id, {}),
        )
        for row in rows
    }
