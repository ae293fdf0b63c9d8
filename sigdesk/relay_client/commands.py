"""Pairing with a relay: the one command the Inbound page, the first-run wizard and `sigdesk relay pair` call.

The network part (redeeming the pairing code, sigdesk.relay_client.client.pair) happens before, outside
any transaction; this stores what it returned, audits and records relay.paired. The caller commits.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from sigdesk.roles import can
from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.errors import Refused, UserError
from sigdesk.events.catalogue import RelayPaired, RelayReplayed
from sigdesk.events.outbox import record
from sigdesk.addresses import check_outbound_url
from sigdesk.relay_client.client import Pairing, read_config
from sigdesk.settings.commands import save


RELAY_ADDRESS = "relay_url"


def check_relay_address(session: Session, actor: Actor, cipher: Cipher, url: str) -> str:
    """The relay address, normalised, if this actor may send a pairing code there; called before the
    network call too. SigDesk sends its relay secrets to this address, so only the owner (or the command
    line) may point it somewhere new; link-local and metadata addresses are refused whoever asks."""
    address = check_outbound_url(url, "Relay address")
    if actor.channel != "cli" and address != read_config(session, cipher).url:
        if actor.user is None or not can(actor.user.role, "connections.redirect"):
            raise Refused(
                "Only the owner can change the relay address (or use `sigdesk relay pair` on the server).",
                status=403,
                field=RELAY_ADDRESS,
            )
    return address


def pair(session: Session, actor: Actor, cipher: Cipher, url: str, pairing: Pairing) -> None:
    """Switch inbound webhooks to the relay at `url` with the credentials its pairing code gave."""
    url = check_relay_address(session, actor, cipher, url)
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


def recheck(session: Session, actor: Actor, since: str) -> None:
    """After the app secret was corrected, the relay agreed to send again from the oldest rejected event
    (the network call came first): the puller fetches them, and those that now verify are stored."""
    record_by(session, actor, "relay.recheck", detail={"since": since})
    record(session, RelayReplayed(since))
