"""Installs on the relay: who may post events for whom, and who may read them.

Every secret handed out (verify token, pairing code, bearer token) is random with at least 120 bits
and kept only as its SHA-256, so a copy of the relay's database lets nobody read or pair. The webhook
path is kept as is: it is an address Meta is given, and knowing it only lets someone post events,
which the desktop refuses unless Meta's signature matches its app secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sigdesk.db import utcnow
from sigdesk.relay.models import Event, Install

PAIRING_VALID = timedelta(days=7)
DEFAULT_MAX_EVENTS = 200_000
DEFAULT_MAX_BYTES = 2 * 1024**3
TOKEN_PREFIX = "sdr_"


class RelayError(Exception):
    """Something the operator asked for cannot be done; the message says why."""


class PairingRefused(RelayError):
    """The pairing code is unknown, used or expired (deliberately not told apart)."""


@dataclass(frozen=True)
class Credentials:
    """Secrets shown once, when an install is made or its tokens rotated."""

    install: Install
    hook_path: str
    pairing_code: str
    verify_token: str | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_digest(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(digest(secret), stored)


def new_pairing_code() -> str:
    """Typeable: 24 base32 letters and digits (120 bits) in groups of four."""
    text = base64.b32encode(secrets.token_bytes(15)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_pairing_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _pairing_digest(code: str) -> str:
    return digest(normalise_pairing_code(code))


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise RelayError("Give the install a name, e.g. the business's name")
    if len(cleaned) > 100:
        raise RelayError("Install names are limited to 100 characters")
    return cleaned


def create_install(
    session: Session, name: str, max_events: int = DEFAULT_MAX_EVENTS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Credentials:
    name = _clean_name(name)
    if max_events < 1 or max_bytes < 1:
        raise RelayError("Quotas must be positive")
    if session.scalar(select(Install.id).where(Install.name == name)) is not None:
        raise RelayError(f"An install named '{name}' already exists")
    hook_path = secrets.token_urlsafe(24)
    verify_token = secrets.token_urlsafe(24)
    code = new_pairing_code()
    install = Install(
        uid=secrets.token_hex(16),
        name=name,
        hook_path=hook_path,
        verify_hash=digest(verify_token),
        pairing_hash=_pairing_digest(code),
        pairing_expires_at=utcnow() + PAIRING_VALID,
        acked_seq=0,
        stored_events=0,
        stored_bytes=0,
        max_events=max_events,
        max_bytes=max_bytes,
    )
    session.add(install)
    session.flush()
    return Credentials(install, hook_path, code, verify_token)


def list_installs(session: Session) -> list[Install]:
    return list(session.scalars(select(Install).order_by(Install.name)))


def find_install(session: Session, name: str) -> Install:
    install = session.scalar(select(Install).where(Install.name == _clean_name(name)))
    if install is None:
        known = ", ".join(item.name for item in list_installs(session)) or "none yet"
        raise RelayError(f"No install named '{name}' (installs: {known})")
    return install


def revoke_install(session: Session, name: str) -> Install:
    """Stop accepting and serving its events at once, and delete the stored ones (nobody may read them now)."""
    install = find_install(session, name)
    if install.revoked_at is not None:
        raise RelayError(f"The install '{install.name}' is already revoked")
    install.revoked_at = utcnow()
    install.token_hash = None
    install.pairing_hash = None
    install.pairing_expires_at = None
    session.execute(delete(Event).where(Event.install_id == install.id))
    install.stored_events = 0
    install.stored_bytes = 0
    session.flush()
    return install


def rotate_tokens(session: Session, name: str, verify_token: bool = False) -> Credentials:
    """A new pairing code (the desktop's current bearer token stops working), optionally a new verify token."""
    install = find_install(session, name)
    if install.revoked_at is not None:
        raise RelayError(f"The install '{install.name}' is revoked; add a new one instead")
    code = new_pairing_code()
    install.token_hash = None
    install.pairing_hash = _pairing_digest(code)
    install.pairing_expires_at = utcnow() + PAIRING_VALID
    new_verify = None
    if verify_token:
        new_verify = secrets.token_urlsafe(24)
        install.verify_hash = digest(new_verify)
    session.flush()
    return Credentials(install, install.hook_path, code, new_verify)


def pair(session: Session, code: str, now: datetime | None = None) -> tuple[Install, str]:
    """Exchange a one-time pairing code for the install's long-lived bearer token."""
    now = now or utcnow()
    if not isinstance(code, str) or not normalise_pairing_code(code):
        raise PairingRefused("A pairing code is needed")
    install = session.scalar(select(Install).where(Install.pairing_hash == _pairing_digest(code)).with_for_update())
    if (
        install is None
        or install.revoked_at is not None
        or install.pairing_expires_at is None
        or install.pairing_expires_at < now
    ):
        raise PairingRefused(
            "This pairing code is unknown, already used or expired; "
            "run 'sigdesk relay rotate-token' on the relay for a new one"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    install.token_hash = digest(token)
    install.pairing_hash = None
    install.pairing_expires_at = None
    install.paired_at = now
    session.flush()
    return install, token
