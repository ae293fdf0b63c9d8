"""Saving settings: the one command every settings page, the first-run wizard and `sigdesk settings set` call.

It checks every value before storing any, stores the changed ones, writes one audit entry per changed
key (the key, never the value) and records one settings.changed event; caches that depend on a
setting (the request policy, the webhook intake's app secret) listen for that event instead of being
cleared by the pages. The caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.errors import UserError
from sigdesk.events.catalogue import SettingsChanged
from sigdesk.events.outbox import record
from sigdesk.settings import services as store
from sigdesk.settings.specs import SettingError, parse_bool, spec_for

REQUIRE_2FA = "security.require_2fa"


class SettingsRejected(UserError):
    """Some values were not acceptable; `errors` says why, by key (nothing was stored)."""

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors))
        super().__init__(errors[first], field=first)
        self.errors = errors


def from_form(keys: Iterable[str], form: Mapping[str, str], blank_keeps: bool = False) -> dict[str, Any]:
    """What a settings form means: an unticked checkbox is false; with blank_keeps an empty text field
    keeps what is stored (secrets are never shown back, so blank must not erase them)."""
    values: dict[str, Any] = {}
    for key in keys:
        if spec_for(key).parse is parse_bool:
            values[key] = bool(form.get(key))
            continue
        text = form.get(key)
        if text is None or (blank_keeps and not text.strip()):
            continue
        values[key] = text
    return values


def _parsed(key: str, value: Any) -> Any:
    spec = spec_for(key)
    parsed = spec.parse(value if isinstance(value, str) else spec.to_text(value))
    return parsed if spec.check is None else spec.check(parsed)


def save(session: Session, actor: Actor, cipher: Cipher, values: Mapping[str, Any]) -> list[str]:
    """Store `values` (text as typed, or typed values) and return the keys that changed; all or nothing."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        try:
            parsed[key] = _parsed(key, value)
        except SettingError as exc:
            errors[key] = str(exc)
    if errors:
        raise SettingsRejected(errors)
    changed = [key for key, value in parsed.items() if store.get(session, cipher, key) != value]
    _check_lockout(actor, parsed, changed)
    for key in changed:
        store.set_value(session, cipher, key, parsed[key])
        record_by(session, actor, "settings.changed", key)
    if changed:
        record(session, SettingsChanged(tuple(changed)))
    return changed


def _check_lockout(actor: Actor, parsed: dict[str, Any], changed: list[str]) -> None:
    """A person may not require two-factor for everyone before they have it themselves."""
    if REQUIRE_2FA in changed and parsed[REQUIRE_2FA] and actor.user is not None and not actor.user.totp_enabled:
        raise SettingsRejected(
            {REQUIRE_2FA: "Turn on two-factor authentication for your own account first, so you are not locked out."}
        )
