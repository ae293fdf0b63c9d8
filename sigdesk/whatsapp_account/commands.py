"""Connecting WhatsApp: the commands the Connection page, the first-run wizard and the CLI call.

The Graph API calls (finding the numbers a token can see, asking Meta to send webhooks to a callback)
happen before or between these, outside any transaction (sigdesk.whatsapp_account.services); each command
stores what they found, writes the audit entry and records its event. The caller commits.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from sigdesk.roles import can
from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.crypto import Cipher
from sigdesk.errors import Refused, UserError
from sigdesk.events.catalogue import WhatsAppConnected, WhatsAppSubscribed
from sigdesk.events.outbox import record
from sigdesk.addresses import check_outbound_url
from sigdesk.settings import services as settings
from sigdesk.settings.commands import save
from sigdesk.whatsapp_account.services import (
    CALLBACK,
    GRAPH_ADDRESS,
    TOKEN,
    Discovery,
    check_callback_url,
    new_verify_token,
)

VERIFY_TOKEN = "whatsapp.verify_token"


def connect(
    session: Session,
    actor: Actor,
    cipher: Cipher,
    discovery: Discovery,
    phone_number_id: str,
    access_token: str | None = None,
    app_secret: str | None = None,
) -> list[str]:
    """Use the number `phone_number_id` (one the token was found to see) with this token and app secret.
    Makes the webhook verify token too when there is none. Returns the settings that changed."""
    account, number = discovery.find(phone_number_id)
    values: dict[str, str] = {"whatsapp.waba_id": account.id, "whatsapp.phone_number_id": number.id}
    if access_token and access_token.strip():
        values[TOKEN] = access_token.strip()
    if app_secret and app_secret.strip():
        values["whatsapp.app_secret"] = app_secret.strip()
    if not settings.get(session, cipher, VERIFY_TOKEN):
        values[VERIFY_TOKEN] = new_verify_token()
    changed = save(session, actor, cipher, values)
    record_by(session, actor, "whatsapp.connected", number.id, {"waba": account.id})
    record(session, WhatsAppConnected(account.id, number.id))
    return changed


def ensure_verify_token(session: Session, actor: Actor, cipher: Cipher) -> str:
    """The verify token Meta's handshake must bring; made (and committed by the caller) before asking Meta."""
    token = settings.get(session, cipher, VERIFY_TOKEN)
    if not token:
        token = new_verify_token()
        save(session, actor, cipher, {VERIFY_TOKEN: token})
    return token


def subscribed(session: Session, actor: Actor, cipher: Cipher, waba_id: str, callback_url: str) -> None:
    """Meta accepted `callback_url` for the account's webhooks (the network call came first); remember it."""
    url = check_callback_url(callback_url)
    save(session, actor, cipher, {CALLBACK: url})
    host = urlsplit(url).hostname or ""
    record_by(session, actor, "whatsapp.subscribed", waba_id, {"host": host})
    record(session, WhatsAppSubscribed(waba_id, host))


def set_callback_url(session: Session, actor: Actor, cipher: Cipher, callback_url: str) -> list[str]:
    """The public HTTPS address that reaches this SigDesk (a tunnel or reverse proxy), for Meta's form."""
    return save(session, actor, cipher, {CALLBACK: check_callback_url(callback_url)})


def set_graph_address(
    session: Session, actor: Actor, cipher: Cipher, url: str, access_token: str | None = None
) -> list[str]:
    """Point the Graph client somewhere else (a test double or a proxy). SigDesk sends the access token
    there, so only the command line or the owner may, the owner re-entering the token in the same form;
    metadata and link-local addresses are refused whoever asks."""
    if actor.channel != "cli":
        if actor.user is None or not can(actor.user.role, "connections.redirect"):
            raise Refused(
                "Only the owner can change the Graph API address (or use `sigdesk settings set "
                "whatsapp.graph_base_url` on the server).",
                status=403,
                field=GRAPH_ADDRESS,
            )
        if not (access_token or "").strip():
            raise UserError(
                "Re-enter the access token to change the Graph API address: SigDesk sends the token there.",
                field=TOKEN,
            )
    address = check_outbound_url(url, GRAPH_ADDRESS)
    values = {GRAPH_ADDRESS: address}
    if access_token and access_token.strip():
        values[TOKEN] = access_token.strip()
    return save(session, actor, cipher, values)
