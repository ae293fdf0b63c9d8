"""The WhatsApp connection: building the Graph client from settings, and checking it works."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sigdesk.crypto import Cipher
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.whatsapp.client import GraphClient
from sigdesk.whatsapp.errors import GraphError

SECRET_KEYS = ("whatsapp.app_secret", "whatsapp.access_token", "whatsapp.verify_token")
PLAIN_KEYS = (
    "whatsapp.phone_number_id",
    "whatsapp.waba_id",
    "whatsapp.api_version",
    "whatsapp.graph_base_url",
    "whatsapp.read_receipts",
)


class NotConnected(Exception):
    """WhatsApp settings are incomplete; the message says which are missing."""


def missing(session: Session, cipher: Cipher) -> list[str]:
    return [
        key for key in ("whatsapp.access_token", "whatsapp.phone_number_id") if not settings.get(session, cipher, key)
    ]


def _labels(keys: list[str]) -> str:
    """The fields as the Connection page labels them, without their hints: "Access token and Phone number ID"."""
    names = [SPECS[key].label.split(" (")[0] for key in keys]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def graph_client(session: Session, cipher: Cipher) -> GraphClient:
    absent = missing(session, cipher)
    if absent:
        raise NotConnected(f"WhatsApp is not connected yet: fill in {_labels(absent)} under Settings → Connection.")
    return GraphClient(
        access_token=settings.get(session, cipher, "whatsapp.access_token"),
        phone_number_id=settings.get(session, cipher, "whatsapp.phone_number_id"),
        waba_id=settings.get(session, cipher, "whatsapp.waba_id"),
        base_url=settings.get(session, cipher, "whatsapp.graph_base_url"),
        api_version=settings.get(session, cipher, "whatsapp.api_version"),
    )


def client_or_none(session: Session, cipher: Cipher) -> GraphClient | None:
    """For background work: no connection yet means nothing to do, not an error."""
    try:
        return graph_client(session, cipher)
    except NotConnected:
        return None


def new_verify_token() -> str:
    """A fresh token for Meta's callback form; store it with sigdesk.settings.commands.save."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    display_number: str | None = None
    verified_name: str | None = None
    quality: str | None = None
    error: str | None = None


def test_connection(session: Session, cipher: Cipher) -> ConnectionCheck:
    try:
        with graph_client(session, cipher) as client:
            info = client.phone_number_info()
    except (NotConnected, ValueError) as exc:
        return ConnectionCheck(False, error=str(exc))
    except GraphError as exc:
        return ConnectionCheck(False, error=exc.human)
    return ConnectionCheck(
        True, info.get("display_phone_number"), info.get("verified_name"), info.get("quality_rating")
    )


test_connection.__test__ = False  # a product feature named test_*, not a pytest test
