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
from sigdesk.errors import UserError
from sigdesk.events.catalogue import RelayPaired, RelayReplayed
from sigdesk.events.outbox import record
from sigdesk.relay_client import receive
from sigdesk.relay_client.client import Pairing, read_config
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


def set_mode(session: Session, actor: Actor, cipher: Cipher, mode: str) -> None:
    """Webhooks through the relay (only once paired) or directly to this server."""
    if mode == "relay" and not read_config(session, cipher).token:
        raise UserError("Pair with a relay first (relay address and pairing code below).", field="mode")
    save(session, actor, cipher, {"inbound.mode": mode})


def unpair(session: Session, actor: Actor, cipher: Cipher) -> None:
    save(session, actor, cipher, {"relay.token": "", "inbound.mode": "direct"})
    record_by(session, actor, "relay.unpaired")


def replayed(session: Session, actor: Actor, since: str) -> None:
    """The relay agreed to send events again from `since` (the network call came first); the puller fetches them."""
    record_by(session, actor, "relay.replay", detail={"since": since})
    record(session, RelayReplayed(since))


def recheck(session: Session, actor: Actor, app_secret: str) -> list:
    """Release the quarantined relayed events that verify with the corrected app secret; the caller applies them."""
    released = receive.recheck_quarantined(session, app_secret)
    record_by(session, actor, "relay.recheck", detail={"released": len(released)})
    return released
