"""The one settings store: typed key/value pairs, secrets encrypted with the data key.

set_text/set_value are the store's primitives, for SigDesk's own bookkeeping (the wizard's step, a
verify token made on first use); a person's change goes through sigdesk.settings.commands.save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigdesk.crypto import Cipher, DataKeyError, create_key, read_key
from sigdesk.models import Setting
from sigdesk.settings.specs import SettingError, Spec, spec_for

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


def plain(session: Session, key: str) -> Any:
    """A setting that is never a secret, read without the data key (the worker's loops, the CLI); a value
    stored by an older version that no longer parses reads as the default."""
    spec = spec_for(key)
    if spec.secret:
        raise ValueError(f"{key} is a secret: read it with get()")
    value = session.scalar(select(Setting.value).where(Setting.key == key))
    if value is None:
        return spec.default
    try:
        return spec.parse(value)
    except SettingError:
        return spec.default


def set_text(session: Session, cipher: Cipher, key: str, text: str) -> Any:
    """Parse and store a value given as text (CLI, forms); returns the typed value."""
    spec = spec_for(key)
    value = spec.parse(text)
    if spec.check is not None:
        value = spec.check(value)
    _store(session, cipher, spec, spec.to_text(value))
    return value


def set_value(session: Session, cipher: Cipher, key: str, value: Any) -> None:
    spec = spec_for(key)
    text = spec.to_text(value)
    spec.parse(text)
    if spec.check is not None:
        text = spec.to_text(spec.check(value))
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


def is_set(session: Session, key: str) -> bool:
    spec_for(key)
    return session.get(Setting, key) is not None


def stored_keys(session: Session) -> list[str]:
    return list(session.scalars(select(Setting.key).where(~Setting.key.startswith("_internal."))))


__all__ = ["SettingError", "get", "is_set", "open_cipher", "set_text", "set_value", "stored_keys"]
