"""Connecting WhatsApp: the commands the Connection page, the first-run wizard and the CLI call.

The Graph API calls (finding the numbers a token can see, asking Meta to send webhooks to a callback)
happen before or between these, outside any transaction (sigdesk.whatsapp_account.services); each command
stores what they found, writes the audit entry and records its event. The caller commits, except in
`subscribe`, which must ask Meta between two transactions and so is handed a way to open them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
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
    REDIRECT,
    TOKEN,
    VERIFY_TOKEN,
    Discovery,
    PhoneNumber,
    callback_suggestion,
    check_callback_url,
    new_verify_token,
    subscribe_webhooks,
    token_client,
)

CALLBACK_OWNER_ONLY = (
    "Only the owner can choose where Meta sends this account's webhooks (they carry every customer "
    "message), or use `sigdesk settings set whatsapp.callback_url` on the server."
)


def _owner_or_cli(actor: Actor, message: str, field: str) -> None:
    """Where secrets and webhooks go is the owner's decision (or the server operator's, on the command line)."""
    if actor.channel == "cli":
        return
    if actor.user is None or not can(actor.user.role, REDIRECT):
        raise Refused(message, status=403, field=field)


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


def found(
    session: Session,
    actor: Actor,
    cipher: Cipher,
    discovery: Discovery,
    access_token: str | None = None,
    app_secret: str | None = None,
) -> PhoneNumber | None:
    """What the token was found to see: with one number, connect it (returned); with several, keep the typed
    token and app secret while the owner picks one (None), so the pick need not carry them again."""
    if len(discovery.choices) == 1:
        number = discovery.choices[0][1]
        connect(session, actor, cipher, discovery, number.id, access_token, app_secret)
        return number
    typed = {TOKEN: access_token, "whatsapp.app_secret": app_secret}
    save(session, actor, cipher, {key: value.strip() for key, value in typed.items() if value and value.strip()})
    return None


def ensure_verify_token(session: Session, actor: Actor, cipher: Cipher) -> str:
    """The verify token Meta's handshake must bring; made (and committed by the caller) before asking Meta."""
    token = settings.get(session, cipher, VERIFY_TOKEN)
    if not token:
        token = new_verify_token()
        save(session, actor, cipher, {VERIFY_TOKEN: token})
    return token


@dataclass(frozen=True)
class Subscription:
    waba_id: str
    callback_url: str
    verify_token: str


def prepare_subscription(
    session: Session,
    actor: Actor,
    cipher: Cipher,
    callback_url: str | None,
    relay_verify_token: str | None,
    url_root: str,
) -> Subscription:
    """Before Meta is asked: who asks (the owner), the address (typed, or the one suggested), the account,
    and the verify token Meta's handshake must bring (the relay's, typed; or this server's, made here).
    The caller commits before asking Meta, so the handshake finds the token."""
    _owner_or_cli(actor, CALLBACK_OWNER_ONLY, CALLBACK)
    suggestion = callback_suggestion(session, cipher, url_root)
    url = check_callback_url((callback_url or "").strip() or suggestion.get("url") or "")
    waba_id = settings.get(session, cipher, "whatsapp.waba_id")
    if not waba_id:
        raise UserError(
            "Connect a WhatsApp number first (the WhatsApp Business Account is not known).", field="connect"
        )
    if suggestion["kind"] == "relay":
        token = (relay_verify_token or "").strip()
        if not token:
            raise UserError(
                "Enter the verify token that `sigdesk relay add-install` printed for this install.",
                field="relay_verify_token",
            )
    else:
        token = ensure_verify_token(session, actor, cipher)
    return Subscription(waba_id, url, token)


def subscribe(
    write: Callable[[], AbstractContextManager[Session]],
    actor: Actor,
    cipher: Cipher,
    callback_url: str | None,
    relay_verify_token: str | None,
    url_root: str,
) -> str:
    """Ask Meta to send the account's webhooks to the callback URL, and remember it: the one command for the
    Connection page and the wizard. Meta's handshake calls back while it is asked, so the call sits between
    two transactions, each opened with `write` (sigdesk.web.writing, or Database.session). Returns the URL."""
    with write() as session:
        plan = prepare_subscription(session, actor, cipher, callback_url, relay_verify_token, url_root)
        client = token_client(session, cipher)
    with client:
        subscribe_webhooks(client, plan.waba_id, plan.callback_url, plan.verify_token)
    with write() as session:
        subscribed(session, actor, cipher, plan.waba_id, plan.callback_url)
    return plan.callback_url


def subscribed(session: Session, actor: Actor, cipher: Cipher, waba_id: str, callback_url: str) -> None:
    """Meta accepted `callback_url` for the account's webhooks (the network call came first); remember it."""
    _owner_or_cli(actor, CALLBACK_OWNER_ONLY, CALLBACK)
    url = check_callback_url(callback_url)
    save(session, actor, cipher, {CALLBACK: url})
    host = urlsplit(url).hostname or ""
    record_by(session, actor, "whatsapp.subscribed", waba_id, {"host": host})
    record(session, WhatsAppSubscribed(waba_id, host))


def set_callback_url(session: Session, actor: Actor, cipher: Cipher, callback_url: str) -> list[str]:
    """The public HTTPS address that reaches this SigDesk (a tunnel or reverse proxy), for Meta's form."""
    _owner_or_cli(actor, CALLBACK_OWNER_ONLY, CALLBACK)
    return save(session, actor, cipher, {CALLBACK: check_callback_url(callback_url)})


def set_graph_address(
    session: Session, actor: Actor, cipher: Cipher, url: str, access_token: str | None = None
) -> list[str]:
    """Point the Graph client somewhere else (a test double or a proxy). SigDesk sends the access token
    there, so only the command line or the owner may, the owner re-entering the token in the same form;
    metadata and link-local addresses are refused whoever asks."""
    if actor.channel != "cli":
        _owner_or_cli(
            actor,
            "Only the owner can change the Graph API address (or use `sigdesk settings set "
            "whatsapp.graph_base_url` on the server).",
            GRAPH_ADDRESS,
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
