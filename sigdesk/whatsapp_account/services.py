"""The WhatsApp connection: building the Graph client from settings, and checking it works."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from sigdesk.crypto import Cipher
from sigdesk.errors import UserError
from sigdesk.addresses import check_outbound_url
from sigdesk.roles import can
from sigdesk.settings import services as settings
from sigdesk.settings.specs import SPECS
from sigdesk.whatsapp.client import GraphClient, InvalidMessage
from sigdesk.whatsapp.errors import GraphError

SECRET_KEYS = ("whatsapp.app_secret", "whatsapp.access_token", "whatsapp.verify_token")
PLAIN_KEYS = (
    "whatsapp.phone_number_id",
    "whatsapp.waba_id",
    "whatsapp.api_version",
    "whatsapp.read_receipts",
)
GRAPH_ADDRESS = "whatsapp.graph_base_url"
TOKEN = "whatsapp.access_token"
CALLBACK = "whatsapp.callback_url"
VERIFY_TOKEN = "whatsapp.verify_token"
REDIRECT = "connections.redirect"  # the owner's: where the token goes, and where Meta sends the webhooks
WEBHOOK_PATH = "/webhooks/whatsapp"
MESSAGING = "whatsapp_business_messaging"
MANAGEMENT = "whatsapp_business_management"
REQUIRED_SCOPES = (MESSAGING, MANAGEMENT)
EXPIRES_SOON = timedelta(days=7)
TIERS = {
    "TIER_50": "50",
    "TIER_250": "250",
    "TIER_1K": "1,000",
    "TIER_2K": "2,000",
    "TIER_10K": "10,000",
    "TIER_100K": "100,000",
    "TIER_UNLIMITED": "unlimited",
}
PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa", ".localdomain")


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


def graph_address(session: Session, cipher: Cipher) -> str:
    """The stored Graph API address, refused when it points at a metadata or link-local address, however it
    was stored (an old install, a hand-edited database): the access token never goes there."""
    try:
        return check_outbound_url(settings.get(session, cipher, GRAPH_ADDRESS), GRAPH_ADDRESS, resolve=False)
    except UserError as exc:
        raise NotConnected(str(exc)) from None


def graph_client(session: Session, cipher: Cipher) -> GraphClient:
    absent = missing(session, cipher)
    if absent:
        raise NotConnected(f"WhatsApp is not connected yet: fill in {_labels(absent)} under Settings → Connection.")
    return GraphClient(
        access_token=settings.get(session, cipher, "whatsapp.access_token"),
        phone_number_id=settings.get(session, cipher, "whatsapp.phone_number_id"),
        waba_id=settings.get(session, cipher, "whatsapp.waba_id"),
        base_url=graph_address(session, cipher),
        api_version=settings.get(session, cipher, "whatsapp.api_version"),
    )


def token_client(
    session: Session, cipher: Cipher, access_token: str | None = None, transport: httpx.BaseTransport | None = None
) -> GraphClient:
    """A client for finding accounts: the typed token (or the stored one), no phone number needed yet."""
    token = (access_token or "").strip() or settings.get(session, cipher, TOKEN)
    if not token:
        raise UserError("Enter the access token (a system user's token from Meta Business Settings).", field=TOKEN)
    return GraphClient(
        graph_address(session, cipher),
        settings.get(session, cipher, "whatsapp.api_version"),
        token,
        transport=transport,
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
    tier: str | None = None
    version_warning: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def tier_label(self) -> str | None:
        return tier_label(self.tier)


def tier_label(tier: str | None) -> str | None:
    """Meta's TIER_1K as a person reads it: how many customers the business may start conversations with a day."""
    if not tier:
        return None
    count = TIERS.get(tier, tier.removeprefix("TIER_"))
    return "no limit on new customers a day" if count == "unlimited" else f"{count} new customers a day"


def version_note(api_version: str, warning: str | None) -> str | None:
    if not warning:
        return None
    return (
        f"Meta reports that Graph API {api_version} is deprecated ({warning}). Choose a current version under "
        f"Graph API version; SigDesk's default is {SPECS['whatsapp.api_version'].default}."
    )


def test_connection(session: Session, cipher: Cipher) -> ConnectionCheck:
    """The token's validity, permissions and expiry, then the number itself: what is wrong, in words."""
    warning = None
    try:
        with graph_client(session, cipher) as client:
            try:
                token = client.debug_token()
                _, notes = _expiry(token, datetime.now(timezone.utc))
                _permissions(token)
                info = client.phone_number_info()
            finally:
                warning = version_note(client.api_version, client.version_warning)
    except (NotConnected, ValueError) as exc:  # UserError is a ValueError: the token's own refusals
        return ConnectionCheck(False, error=str(exc), version_warning=warning)
    except GraphError as exc:
        return ConnectionCheck(False, error=exc.human, version_warning=warning)
    return ConnectionCheck(
        True,
        info.get("display_phone_number"),
        info.get("verified_name"),
        info.get("quality_rating"),
        tier=info.get("messaging_limit_tier"),
        version_warning=warning,
        notes=tuple(notes),
    )


# --- connecting with only a token -------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneNumber:
    id: str
    display_phone_number: str
    verified_name: str
    quality_rating: str | None
    messaging_limit_tier: str | None

    @property
    def tier_label(self) -> str | None:
        return tier_label(self.messaging_limit_tier)


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    numbers: tuple[PhoneNumber, ...]


@dataclass(frozen=True)
class Discovery:
    """What the token can see and how long it lasts; `warnings` are worth telling but do not stop connecting."""

    accounts: tuple[Account, ...]
    expires_at: datetime | None
    warnings: tuple[str, ...] = ()
    version_warning: str | None = None
    choices: tuple[tuple[Account, PhoneNumber], ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple((a, n) for a in self.accounts for n in a.numbers))

    def find(self, phone_number_id: str) -> tuple[Account, PhoneNumber]:
        for account, number in self.choices:
            if number.id == phone_number_id:
                return account, number
        raise UserError(
            "That phone number is not one the access token can use; pick one from the list.",
            field="whatsapp.phone_number_id",
        )


def _expiry(data: dict[str, Any], now: datetime) -> tuple[datetime | None, list[str]]:
    if data.get("is_valid") is False:
        raise UserError(
            "Meta says this access token is no longer valid (revoked, or its system user lost access). "
            "Generate a new one in Meta Business Settings → System users.",
            field=TOKEN,
        )
    stamp = data.get("expires_at")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp <= 0:
        return None, []
    expires = datetime.fromtimestamp(stamp, timezone.utc)
    when = expires.strftime("%Y-%m-%d %H:%M UTC")
    if expires <= now:
        raise UserError(
            f"This access token expired on {when}. Generate a permanent system-user token in Meta Business "
            "Settings → System users (choose 'Never' for expiry).",
            field=TOKEN,
        )
    if expires - now <= EXPIRES_SOON:
        return expires, [
            f"This access token expires on {when}; WhatsApp stops working then. Use a permanent "
            "system-user token (expiry 'Never') instead."
        ]
    return expires, [f"This access token expires on {when}. A permanent system-user token does not."]


def _permissions(data: dict[str, Any]) -> list[str]:
    scopes = {str(scope) for scope in data.get("scopes") or []}
    lacking = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
    if lacking:
        raise UserError(
            f"The access token lacks the permission{'s' if len(lacking) > 1 else ''} {' and '.join(lacking)}. "
            "In Meta Business Settings → System users, generate the token again with "
            f"{MESSAGING} and {MANAGEMENT} ticked.",
            field=TOKEN,
        )
    ids: list[str] = []
    for grant in data.get("granular_scopes") or []:
        if isinstance(grant, dict) and grant.get("scope") in REQUIRED_SCOPES:
            ids.extend(str(target) for target in grant.get("target_ids") or [] if str(target).isdigit())
    return list(dict.fromkeys(ids))


def _number(item: dict[str, Any]) -> PhoneNumber:
    return PhoneNumber(
        str(item["id"]),
        str(item.get("display_phone_number") or ""),
        str(item.get("verified_name") or ""),
        item.get("quality_rating"),
        item.get("messaging_limit_tier"),
    )


def discover(client: GraphClient, waba_hint: str | None = None, now: datetime | None = None) -> Discovery:
    """Through the one Graph client: check the token (valid, not expired, both WhatsApp permissions), then
    list the WhatsApp Business Accounts it may use (debug_token's granular scopes, or the one typed in) and
    their phone numbers. Every refusal is a UserError naming the field to fix. Network only; no database."""
    now = now or datetime.now(timezone.utc)
    try:
        data = client.debug_token()
        expires, warnings = _expiry(data, now)
        ids = _permissions(data)
        if waba_hint:
            ids = [waba_hint]
        if not ids:
            raise UserError(
                "The access token has the WhatsApp permissions but no WhatsApp Business Account. In Meta Business "
                "Settings → System users → Assign assets, give the system user your WhatsApp account, or enter "
                "its ID below.",
                field="whatsapp.waba_id",
            )
        accounts = []
        for waba_id in ids:
            name = str(client.business_account(waba_id).get("name") or waba_id)
            numbers = tuple(_number(item) for item in client.phone_numbers(waba_id))
            accounts.append(Account(waba_id, name, numbers))
    except GraphError as exc:
        raise UserError(exc.human, field=TOKEN) from None
    except InvalidMessage as exc:
        raise UserError(str(exc), field="whatsapp.waba_id") from None
    if not any(account.numbers for account in accounts):
        raise UserError(
            "The WhatsApp Business Account has no phone number yet. Add and verify one in WhatsApp Manager → "
            "Phone numbers, then try again.",
            field="whatsapp.phone_number_id",
        )
    note = version_note(client.api_version, client.version_warning)
    return Discovery(tuple(accounts), expires, tuple(warnings), note)


def find_numbers(session: Session, cipher: Cipher, access_token: str | None, waba_hint: str | None = None) -> Discovery:
    """Network only: the token typed (or stored) checked and its accounts and numbers listed. The read
    transaction ends before Meta is asked, so no snapshot is held across the call."""
    client = token_client(session, cipher, access_token)
    session.rollback()
    with client:
        return discover(client, (waba_hint or "").strip() or None)


def subscribe_webhooks(client: GraphClient, waba_id: str, callback_url: str, verify_token: str) -> None:
    """Ask Meta to send this account's webhooks to `callback_url`; Meta checks it with the handshake first,
    so the verify token must already be where the callback answers (committed, or on the relay)."""
    try:
        client.subscribe_app(waba_id, callback_url, verify_token)
    except GraphError as exc:
        if exc.code == 2200:
            raise UserError(
                f"Meta could not verify {callback_url}: {exc.args[0]} Check that the address reaches SigDesk "
                "(or the relay) from the internet and that the verify token matches.",
                field=CALLBACK,
            ) from None
        raise UserError(exc.human, field=CALLBACK) from None
    except InvalidMessage as exc:
        raise UserError(str(exc), field="whatsapp.waba_id") from None


# --- the callback URL Meta calls --------------------------------------------------------------------


def check_callback_url(url: str) -> str:
    """An address Meta can reach: https on a public host name or address. Loopback, private networks and
    local names (127.0.0.1, 192.168.x.x, desk.local) are refused: Meta's servers can never reach them."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise UserError(f"'{text}' is not a valid address.", field=CALLBACK) from None
    if parts.scheme != "https" or not parts.hostname:
        raise UserError(
            "Meta only calls https:// addresses with a valid certificate, like https://desk.example.com/webhooks/whatsapp.",
            field=CALLBACK,
        )
    if parts.username or parts.password or parts.fragment:
        raise UserError("The callback URL must not carry a user name, password or #fragment.", field=CALLBACK)
    host = parts.hostname.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    local_name = host == "localhost" or "." not in host or host.endswith(PRIVATE_SUFFIXES)
    if local_name or (ip is not None and not ip.is_global):
        raise UserError(
            f"{host} is only reachable inside your network; Meta's servers can never reach it. Use the relay's "
            "webhook address, or a public HTTPS address (a tunnel or reverse proxy) that reaches this SigDesk.",
            field=CALLBACK,
        )
    return text


def callback_suggestion(session: Session, cipher: Cipher, url_root: str) -> dict[str, Any]:
    """What to tell the owner about the address Meta calls: the relay's when paired, the public address set
    here, or this page's own address when Meta could reach it; never a loopback or private one."""
    mode = settings.get(session, cipher, "inbound.mode")
    relay_url = settings.get(session, cipher, "relay.url")
    paired = bool(
        relay_url and settings.is_set(session, "relay.token") and settings.get(session, cipher, "relay.token")
    )
    stored = settings.get(session, cipher, CALLBACK)
    if mode == "relay" and paired:
        return {"kind": "relay", "url": stored, "relay_url": relay_url}
    if stored:
        return {"kind": "public", "url": stored}
    own = url_root.rstrip("/") + WEBHOOK_PATH
    try:
        return {"kind": "public", "url": check_callback_url(own), "suggested": True}
    except UserError:
        return {"kind": "none", "url": None, "local": own}


def overview(session: Session, cipher: Cipher, url_root: str, role: str | None) -> dict[str, Any]:
    """What the Connection page and the wizard's WhatsApp and inbound steps show about the connection;
    `role` is the viewer's, for what they may change."""
    return {
        "api_version": settings.get(session, cipher, "whatsapp.api_version"),
        "default_version": SPECS["whatsapp.api_version"].default,
        "graph_address": settings.get(session, cipher, GRAPH_ADDRESS),
        "callback": callback_suggestion(session, cipher, url_root),
        "verify_token_set": bool(settings.get(session, cipher, VERIFY_TOKEN)),
        "token_set": settings.is_set(session, TOKEN),
        "waba_id": settings.get(session, cipher, "whatsapp.waba_id"),
        "may_change_graph_address": can(role, REDIRECT),
    }


test_connection.__test__ = False  # a product feature named test_*, not a pytest test
