"""Which column of a file goes to which contact field: suggested from the header's names, given by the
person (page, API, CLI), and checked before anything is imported.

A mapping is a list of (column index, header, field). Fields are the contact's standard fields by their
import names, `tags`, `stage`, `consent`, `owner` (a user's email), `field:<key>` for a custom field, or
`ignore`. Each field takes at most one column: two columns on one field is refused naming both.

Other kinds of import (products, orders: sigdesk.imports.kinds) bring their own `Spec`: their fields, the
header words that suggest them, and what a mapping must name; the functions here take it (contacts' by default).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigdesk.errors import UserError

STANDARD = ("phone", "name", "email", "company", "city", "country", "language", "notes")
FIELDS = (*STANDARD, "owner", "tags", "stage", "consent")
IGNORE = "ignore"
CUSTOM_PREFIX = "field:"

# Header words (accents and case folded, punctuation dropped) that suggest a field.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "phone": (
        "phone",
        "phonenumber",
        "telephone",
        "tel",
        "telefon",
        "telefono",
        "telefone",
        "telefonnummer",
        "mobile",
        "mobil",
        "mobilephone",
        "cell",
        "cellphone",
        "celular",
        "handy",
        "whatsapp",
        "whatsappnumber",
        "number",
        "waid",
        "msisdn",
        "movil",
    ),
    "name": ("name", "fullname", "contact", "contactname", "nombre", "nome", "customer", "kunde", "displayname"),
    "email": ("email", "mail", "emailaddress", "correo", "correoelectronico", "courriel"),
    "company": ("company", "organisation", "organization", "firma", "empresa", "business", "unternehmen"),
    "city": ("city", "town", "stadt", "ort", "ciudad", "cidade", "ville"),
    "country": ("country", "land", "pais", "countrycode", "pays"),
    "language": ("language", "lang", "sprache", "idioma", "locale", "langue"),
    "notes": ("notes", "note", "comment", "comments", "notizen", "notas", "remarks"),
    "owner": ("owner", "assignee", "agent", "accountowner", "besitzer"),
    "tags": ("tags", "tag", "labels", "label", "etiquetas"),
    "stage": ("stage", "lifecyclestage", "status", "phase", "etapa"),
    "consent": ("consent", "marketingconsent", "optin", "marketing", "einwilligung", "consentimiento"),
}
_WORD = re.compile(r"[^a-z0-9]")

Mapped = list[tuple[int, str, str]]


@dataclass(frozen=True)
class Spec:
    """What one kind of import maps columns to: its fields, the header words suggesting each, whether
    custom fields (`field:<key>`) may be mapped, and what a mapping must name (`missing` says what is
    lacking, or None)."""

    fields: tuple[str, ...]
    synonyms: Mapping[str, tuple[str, ...]]
    custom: bool
    missing: Callable[[set[str]], str | None]


def _contacts_missing(fields: set[str]) -> str | None:
    if "phone" not in fields and "email" not in fields:
        return "Map a column to phone (or to email, to update contacts found by email)"
    return None


CONTACTS = Spec(FIELDS, SYNONYMS, True, _contacts_missing)


def _folded(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _WORD.sub("", plain.lower())


def suggest(headers: Sequence[str], custom_keys: Iterable[str] = (), spec: Spec = CONTACTS) -> Mapped:
    """A field for each column whose name says which (Phone, Telefon, Teléfono, WhatsApp, E-mail...),
    each field once (the first column wins); the rest `ignore`."""
    custom = {_folded(key): key for key in custom_keys} if spec.custom else {}
    taken: set[str] = set()
    mapped: Mapped = []
    for index, header in enumerate(headers):
        word = _folded(header)
        field = next((name for name, words in spec.synonyms.items() if word in words), None)
        if field is None and word in custom:
            field = CUSTOM_PREFIX + custom[word]
        if field is None or field in taken:
            field = IGNORE
        else:
            taken.add(field)
        mapped.append((index, header, field))
    return mapped


def check_field(field: str, custom_keys: Iterable[str], spec: Spec = CONTACTS) -> str:
    field = field.strip()
    if field in spec.fields or field == IGNORE:
        return field
    if spec.custom and field.startswith(CUSTOM_PREFIX):
        key = field[len(CUSTOM_PREFIX) :].strip()
        if key in set(custom_keys):
            return CUSTOM_PREFIX + key
        raise UserError(f"There is no custom field '{key}' (mapping '{field}')", field="mapping")
    custom = ", field:<key>" if spec.custom else ""
    raise UserError(
        f"'{field}' is not a field to import into (use one of {', '.join(spec.fields)}{custom} or ignore)",
        field="mapping",
    )


def build(
    headers: Sequence[str],
    given: Mapping[str, Any] | None,
    custom_keys: Iterable[str] = (),
    base: Mapped | None = None,
    spec: Spec = CONTACTS,
) -> Mapped:
    """The mapping from `given` (header name -> field; a column not named is ignored), on top of `base`
    when given (the CLI's suggestion, adjusted by --map). A header that is not in the file is refused."""
    custom_keys = list(custom_keys)
    mapped = list(base) if base is not None else [(index, header, IGNORE) for index, header in enumerate(headers)]
    for column, field in (given or {}).items():
        if not isinstance(column, str) or not isinstance(field, str):
            raise UserError("The mapping names columns and fields as text", field="mapping")
        indexes = [index for index, header in enumerate(headers) if header == column]
        if not indexes:
            indexes = [index for index, header in enumerate(headers) if header.casefold() == column.casefold()]
        if not indexes:
            raise UserError(f"The file has no column '{column}' (its columns: {', '.join(headers)})", field="mapping")
        field = check_field(field, custom_keys, spec)
        for index in indexes[:1]:
            mapped[index] = (index, headers[index], field)
    return check(mapped, spec)


def check(mapped: Mapped, spec: Spec = CONTACTS) -> Mapped:
    """Refuse a mapping that puts two columns on one field (naming both), or imports nothing to match on."""
    seen: dict[str, str] = {}
    for _index, header, field in mapped:
        if field == IGNORE:
            continue
        if field in seen:
            raise UserError(
                f"Columns '{seen[field]}' and '{header}' are both mapped to {field}: map one of them to ignore",
                field="mapping",
            )
        seen[field] = header
    missing = spec.missing(set(seen))
    if missing is not None:
        raise UserError(missing, field="mapping")
    return mapped


def parse_json(text: str | None) -> dict[str, str] | None:
    """The mapping as the API and the page send it: a JSON object of header -> field; empty: None."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise UserError("'mapping' must be a JSON object of column name -> field", field="mapping") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UserError("'mapping' must be a JSON object of column name -> field", field="mapping")
    return value


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """The CLI's --map COLUMN=FIELD options."""
    given: dict[str, str] = {}
    for pair in pairs:
        column, sep, field = pair.rpartition("=")
        if not sep or not column.strip():
            raise UserError(f"--map takes COLUMN=FIELD, not '{pair}'", field="map")
        given[column.strip()] = field.strip()
    return given


def dumps(mapped: Mapped) -> str:
    return json.dumps([list(item) for item in mapped], ensure_ascii=False)


def loads(text: str) -> Mapped:
    return [(int(index), str(header), str(field)) for index, header, field in json.loads(text)]
