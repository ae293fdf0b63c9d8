"""The one settings store: typed key/value pairs, secrets encrypted with the data key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.crypto import Cipher, DataKeyError, create_key, read_key
from sigdesk.models import Setting
from sigdesk.settings.specs import SettingError, Spec, parse_bool, spec_for

KEY_CHECK = "_internal.data_key_check"


def open_cipher(session: Session, key_file: Path) -> Cipher:
    """Load the data key, creating it only when the database has never held encrypted data."""
    check = session.get(Setting, KEY_CHECK)
    if check is None:
        key = read_key(key_file) if key_file.exists() else create_key(key_file)
        cipher = Cipher(key)
        session.add(Setting(key=KEY_CHECK, value=cipher.make_check(), is_secret=False))
        session.flush()
        return cipher
    cipher = Cipher(read_key(key_file))
    if not cipher.matches_check(check.value):
        raise DataKeyError(
            f"The data key file {key_file} does not belong to this database. "
            "Restore the key file that was beside this database."
        )
    return cipher


def get(session: Session, cipher: Cipher, key: str) -> Any:
    spec = spec_for(key)
    row = session.get(Setting, key)
    if row is None:
        return spec.default
    text = cipher.decrypt_str(row.value, context=key) if row.is_secret else row.value
    return spec.parse(text)


def set_text(session: Session, cipher: Cipher, key: str, text: str) -> Any:
    """Parse and store a value given as text (CLI, forms); returns the typed value."""
    spec = spec_for(key)
    value = spec.parse(text)
    _store(session, cipher, spec, spec.to_text(value))
    return value


def set_value(session: Session, cipher: Cipher, key: str, value: Any) -> None:
    spec = spec_for(key)
    text = spec.to_text(value)
    spec.parse(text)
    _store(session, cipher, spec, text)


def _store(session: Session, cipher: Cipher, spec: Spec, text: str) -> None:
    stored = cipher.encrypt_str(text, context=spec.key) if spec.secret else text
    row = session.get(Setting, spec.key)
    if row is None:
        session.add(Setting(key=spec.key, value=stored, is_secret=spec.secret))
    else:
        row.value = stored
        row.is_secret = spec.secret
    session.flush()


def apply_form(
    session: Session, cipher: Cipher, keys: Iterable[str], form: Mapping[str, str], blank_keeps: bool = False
) -> tuple[list[str], dict[str, str]]:
    """Store the settings a form posted; returns (changed keys, errors by key). The caller commits
    only when there are no errors. Unticked checkboxes mean false; with blank_keeps, an empty text
    field keeps what is stored (secrets are never shown back, so blank must not erase them)."""
    changed: list[str] = []
    errors: dict[str, str] = {}
    for key in keys:
        spec = spec_for(key)
        if spec.parse is parse_bool:
            text = "true" if form.get(key) else "false"
        else:
            text = form.get(key)
            if text is None or (blank_keeps and not text.strip()):
                continue
        try:
            before = get(session, cipher, key)
            if before != set_text(session, cipher, key, text):
                changed.append(key)
        except SettingError as exc:
            errors[key] = str(exc)
    return changed, errors


def is_set(session: Session, key: str) -> bool:
    spec_for(key)
    return session.get(Setting, key) is not None


def stored_keys(session: Session) -> list[str]:
    return list(session.scalars(select(Setting.key).where(~Setting.key.startswith("_internal."))))


__all__ = ["SettingError", "apply_form", "get", "is_set", "open_cipher", "set_text", "set_value", "stored_keys"]
