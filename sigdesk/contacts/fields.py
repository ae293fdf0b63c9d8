"""The rules of a contact's standard fields: what each takes, how it is written down, and what is refused.

Every way in (the API, the pages, the CLI, imports) gives the fields by their API names and gets the
same refusals, each naming the field, because the commands check here and nowhere else. The profile
name is not among them: it is what the customer set in WhatsApp, and only the webhooks change it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.contacts.phones import normalise
from sigdesk.errors import UserError
from sigdesk.models import Setting, User
from sigdesk.settings.specs import PHONE_REGIONS, spec_for

# Bounds by field, in characters; the columns are as wide (notes is a TEXT column, bounded here).
LIMITS = {"name": 255, "email": 254, "company": 255, "city": 255, "country": 2, "language": 35, "notes": 10_000}
# API name -> column. `name` is the business's own name for the customer (display_name).
COLUMN_OF = {
    "phone": "wa_id",
    "name": "display_name",
    "email": "email",
    "company": "company",
    "city": "city",
    "country": "country",
    "language": "language",
    "notes": "notes",
    "owner_id": "owner_id",
}
EDITABLE = tuple(COLUMN_OF)
# ISO 3166-1 alpha-2: the codes with a numbering plan, less two that are not countries (Ascension and
# Tristan da Cunha share SH's), and the territories nobody phones.
COUNTRIES = (PHONE_REGIONS - {"AC", "TA"}) | {"AQ", "BV", "GS", "HM", "PN", "TF", "UM"}
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def default_country(session: Session) -> str | None:
    """The contacts.default_country setting (not a secret, so no cipher is needed to read it)."""
    spec = spec_for("contacts.default_country")
    value = session.scalar(select(Setting.value).where(Setting.key == spec.key))
    return spec.default if value is None else spec.parse(value)


def clean(session: Session, given: Mapping[str, Any], default_country: str | None) -> dict[str, Any]:
    """Column values for the fields given by API name; null or "" clears a field (never the phone)."""
    unknown = sorted(set(given) - set(EDITABLE))
    if unknown:
        raise UserError(f"'{unknown[0]}' is not a contact field (known: {', '.join(EDITABLE)})", field=unknown[0])
    values: dict[str, Any] = {}
    for field, value in given.items():
        if field == "owner_id":
            values["owner_id"] = _owner(session, value)
        elif field == "phone":
            if not isinstance(value, str):
                raise UserError("Give the phone number as text, such as +49 170 1234567", field="phone")
            values["wa_id"] = normalise(value, default_country)
        else:
            values[COLUMN_OF[field]] = _RULES.get(field, _plain)(field, _text(field, value))
    return values


def _text(field: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserError(f"'{field}' must be text", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"'{field}' contains text that is not valid Unicode", field=field) from None
    value = value.strip()
    if len(value) > LIMITS[field]:
        raise UserError(f"'{field}' is at most {LIMITS[field]} characters", field=field)
    if _CONTROL.search(value) or (field != "notes" and ("\n" in value or "\r" in value or "\t" in value)):
        raise UserError(f"'{field}' contains control characters", field=field)
    return value or None


def _plain(_field: str, value: str | None) -> str | None:
    return value


def _email(field: str, value: str | None) -> str | None:
    """Written down in lower case, so finding duplicates and matching imports by email need no folding."""
    if value is None:
        return None
    if not _EMAIL.fullmatch(value):
        raise UserError("This is not an email address like name@example.com", field=field)
    return value.lower()


def _country(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    if value.upper() not in COUNTRIES:
        raise UserError("Give the country as a two-letter ISO code such as DE, US or BR", field=field)
    return value.upper()


def _language(field: str, value: str | None) -> str | None:
    """A BCP 47 language with an optional script and region, in its usual case: en, pt-BR, zh-Hant-TW."""
    if value is None:
        return None
    found = _LANGUAGE.fullmatch(value.replace("_", "-"))
    if found is None:
        raise UserError("Give the language as a code such as en, es or pt-BR", field=field)
    language, script, region = found.groups()
    return "-".join(
        part for part in (language.lower(), script.title() if script else "", region.upper() if region else "") if part
    )


_RULES = {"email": _email, "country": _country, "language": _language}


def _owner(session: Session, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError("'owner_id' must be a user's id (a number) or null", field="owner_id")
    found = session.scalar(select(User.id).where(User.id == value, User.is_active.is_(True)))
    if found is None:
        raise UserError(f"There is no active user {value} to own this contact", field="owner_id")
    return found
