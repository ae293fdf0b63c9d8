"""Pairing with a relay: the one command the Inbound page, the first-run wizard and `sigdesk relay pair` call.

The network part (redeeming the pairing code, sigdesk.relay_client.client.pair) happens before, outside
any transaction; this stores what it returned, audits and records relay.paired. The caller commits.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.events.catalogue import RelayPaired
from sigdesk.events.outbox import record
from sigdesk.relay_client.client import Pairing
from sigdesk.settings.commands import save


def pair(session: Session, actor: Actor, cipher: Cipher, url: str, pairing: Pairing) -> None:
    """Switch inbound webhooks to the relay at `url` with the credentials its pairing code gave."""
    save(
        session,
        actor,
        cipher,
        {"relay.url": url, "relay.token": pairing.token, "relay.install": pairing.install, "inbound.mode": "relay"},
    )
    record_by(session, actor, "relay.paired", pairing.name, {"relay": url})
    record(session, RelayPaired(urlsplit(url).hostname or url))
