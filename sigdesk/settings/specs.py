"""Every setting SigDesk knows, with its type, default and whether it is a secret.

One table so that the CLI, the admin pages and the services agree on names and types.
"""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from sigdesk.addresses import check_outbound_url
from sigdesk.errors import UserError
from sigdesk.passwords import password_problem

DEFAULT_ALLOWED_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7,fe80::/10"


class SettingError(ValueError):
    """A setting name or value the user gave is not acceptable; the message says why."""


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"'{text}' is not a yes/no value (use true or false)")


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError as exc:
        raise SettingError(f"'{text}' is not a whole number") from exc


def parse_networks(text: str) -> str:
    parts = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not parts:
        raise SettingError("The allow-list needs at least one network (127.0.0.1 is always a good start)")
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise SettingError(f"'{part}' is not an IP address or CIDR network") from exc
    return ",".join(parts)


def parse_proxies(text: str | None) -> str:
    """Trusted proxies: addresses or networks, comma-separated; empty trusts none (the default)."""
    parts = [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]
    for part in parts:
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise SettingError(f"'{part}' is not an IP address or CIDR network") from exc
        if network.prefixlen == 0:
            raise SettingError(f"'{part}' would trust every address; list only your proxy's or tunnel's address")
    return ",".join(parts)


def parse_str(text: str) -> str:
    return text


def parse_api_version(text: str) -> str:
    cleaned = text.strip()
    if not re.fullmatch(r"v\d{1,3}\.0", cleaned):
        raise SettingError(f"'{text}' is not a Graph API version (like v26.0)")
    return cleaned


def parse_http_url(text: str) -> str:
    cleaned = text.strip().rstrip("/")
    parts = urlsplit(cleaned)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingError(f"'{text}' is not an http(s) address like https://graph.facebook.com")
    return cleaned


def check_secret_destination(value: str) -> str:
    """An address SigDesk sends a token to is never set to a link-local or metadata one, however it is set.
    Checked on writing only: a value stored before must still read (the client refuses to use it)."""
    try:
        return check_outbound_url(value, "address", resolve=False)
    except UserError as error:
        raise SettingError(str(error).removeprefix("address: ")) from None


def parse_digits(text: str) -> str:
    cleaned = text.strip()
    if not cleaned.isdigit() or len(cleaned) > 32:
        raise SettingError(f"'{text}' is not a numeric ID from Meta's dashboard")
    return cleaned


def parse_optional_digits(text: str) -> str:
    """A numeric Meta ID, or empty for none (so a form can clear it)."""
    return parse_digits(text) if text.strip() else ""


def parse_inbound_mode(text: str) -> str:
    cleaned = text.strip().lower()
    if cleaned not in ("direct", "relay"):
        raise SettingError(f"'{text}' is not an inbound mode (use relay or direct)")
    return cleaned


def parse_days(text: str) -> int:
    days = parse_int(text)
    if not 0 <= days <= 36500:
        raise SettingError(f"'{text}' is not a number of days between 0 (keep forever) and 36500")
    return days


def parse_horizons(text: str) -> str:
    """Reorder prediction horizons: up to five numbers of days from 1 to 365, comma-separated ("7,30,90")."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or len(parts) > 5 or not all(part.isascii() and part.isdigit() for part in parts):
        raise SettingError(f"'{text}' is not a list of one to five numbers of days, like 7,30,90")
    days = sorted({int(part) for part in parts})
    if not all(1 <= day <= 365 for day in days):
        raise SettingError(f"'{text}' has a horizon outside 1 to 365 days")
    return ",".join(str(day) for day in days)


def parse_margin(text: str) -> int:
    days = parse_int(text)
    if not 0 <= days <= 365:
        raise SettingError(f"'{text}' is not a number of days between 0 and 365")
    return days


MESSAGING_TIERS = ("250", "2000", "10000", "100000", "unlimited")
UTILITY_CONSENT = ("not_opted_out", "opted_in")


def parse_messaging_limit(text: str) -> str:
    """Meta's messaging limit tier: unique customers a number may start conversations with in 24 hours."""
    cleaned = text.strip().lower().replace(",", "").replace("_", "")
    if cleaned not in MESSAGING_TIERS:
        raise SettingError(f"'{text}' is not a messaging limit (use {', '.join(MESSAGING_TIERS)})")
    return cleaned


def parse_rate(text: str) -> int:
    """Messages per second: Meta's throughput is 80 by default and at most 1,000 for a number."""
    rate = parse_int(text)
    if not 1 <= rate <= 1000:
        raise SettingError(f"'{text}' is not a number of messages per second between 1 and 1000")
    return rate


def parse_utility_consent(text: str) -> str:
    cleaned = text.strip().lower()
    if cleaned not in UTILITY_CONSENT:
        raise SettingError(f"'{text}' is not a utility template rule (use {' or '.join(UTILITY_CONSENT)})")
    return cleaned


def parse_attribution_days(text: str) -> int:
    days = parse_int(text)
    if not 1 <= days <= 90:
        raise SettingError(f"'{text}' is not a number of days between 1 and 90")
    return days


def parse_schedule(text: str) -> str:
    cleaned = text.strip().lower()
    if cleaned not in ("off", "daily", "weekly"):
        raise SettingError(f"'{text}' is not a backup schedule (use off, daily or weekly)")
    return cleaned


def parse_clock(text: str) -> str:
    cleaned = text.strip()
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", cleaned)
    if not match:
        raise SettingError(f"'{text}' is not a time of day like 02:30")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_passphrase(text: str) -> str:
    if len(text) < 8:
        raise SettingError("Use a backup passphrase of at least 8 characters")
    return text


def check_backup_passphrase(passphrase: str) -> str:
    """A new backup passphrase, if the password policy accepts it; existing ones still read and restore."""
    problem = password_problem(passphrase, ["backup"], what="backup passphrase")
    if problem:
        raise SettingError(problem)
    return passphrase


def parse_timezone(text: str) -> str:
    cleaned = text.strip()
    try:
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"'{text}' is not a time zone name like Europe/Berlin or America/New_York") from None
    return cleaned


def machine_timezone() -> str:
    """This computer's IANA zone name, so a new install shows times as the wall clock does (UTC if unknown)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        with open("/etc/timezone", encoding="utf-8") as stored:
            candidates.append(stored.read().strip())
    except OSError:
        pass
    _, found, name = os.path.realpath("/etc/localtime").partition("/zoneinfo/")
    if found:
        candidates.append(name)
    for candidate in filter(None, candidates):
        try:
            return parse_timezone(candidate)
        except SettingError:
            continue
    return "UTC"


# ISO 3166-1 alpha-2 codes that have a numbering plan (phonenumbers' "001" is not a country).
PHONE_REGIONS = frozenset(region for region in phonenumbers.SUPPORTED_REGIONS if region.isalpha())


def parse_country(text: str) -> str:
    """A default country for phone numbers typed without a prefix: an ISO code like DE ("": none)."""
    cleaned = text.strip().upper()
    if not cleaned:
        return ""
    if cleaned not in PHONE_REGIONS:
        raise SettingError(f"'{text}' is not a two-letter country code like DE, US or BR")
    return cleaned


def parse_currency(text: str) -> str:
    """The shop's currency: an ISO 4217 code like EUR."""
    from babel.numbers import list_currencies

    cleaned = text.strip().upper()
    if cleaned not in list_currencies():
        raise SettingError(f"'{text}' is not a currency: give a three-letter ISO code like EUR, USD or BRL")
    return cleaned


def machine_currency() -> str:
    """The currency of this computer's country (DE gives EUR), or EUR when the locale names no country."""
    from babel.numbers import get_territory_currencies

    found = get_territory_currencies(machine_country()) if machine_country() else []
    return found[0] if found else "EUR"


def machine_country() -> str:
    """The country of this computer's locale (de_DE gives DE), or "" when it names none (C, POSIX)."""
    import locale

    names = [os.environ.get(name, "") for name in ("LC_ALL", "LC_CTYPE", "LANG")]
    try:
        names.append(locale.getlocale()[0] or "")
    except ValueError:
        pass
    for name in names:
        _, separator, rest = name.partition("_")
        if separator and rest[:2].upper() in PHONE_REGIONS:
            return rest[:2].upper()
    return ""


# Whole-message keywords that opt a customer out of marketing or back in (matched without case or accents).
DEFAULT_STOP_KEYWORDS = (
    "STOP, STOPP, STOPPEN, PARAR, BAJA, ARRÊT, ARRET, UNSUBSCRIBE, DESUSCRIBIR, CANCELAR, ABMELDEN, "
    "DÉSABONNER, DESINSCRIRE, AFMELDEN, DISISCRIVIMI, OPT OUT, OPT-OUT"
)
DEFAULT_START_KEYWORDS = "START, ALTA, INICIAR, ANMELDEN, SUBSCRIBE, SUSCRIBIR, COMMENCER, AANMELDEN, ISCRIVIMI, OPT IN"


def parse_keywords(text: str) -> str:
    """A comma-separated list of keywords, each a short phrase; empty turns the check off."""
    parts = [" ".join(part.split()) for part in text.replace("\n", ",").split(",")]
    parts = [part for part in parts if part]
    for part in parts:
        if len(part) > 64:
            raise SettingError(f"'{part[:20]}...' is too long for a keyword (64 characters at most)")
    return ", ".join(dict.fromkeys(parts))


ONBOARDING_STEPS = ("welcome", "whatsapp", "inbound", "backup", "done")


def parse_onboarding_step(text: str) -> str:
    cleaned = text.strip().lower()
    if cleaned not in ONBOARDING_STEPS:
        raise SettingError(f"'{text}' is not a first-run step (use one of {', '.join(ONBOARDING_STEPS)})")
    return cleaned


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    parse: Callable[[str], Any] = parse_str
    default: Any = None
    secret: bool = False
    check: Callable[[Any], Any] | None = None  # a rule for new values only, beyond their type

    def to_text(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


SPECS: dict[str, Spec] = {
    spec.key: spec
    for spec in [
        Spec("security.require_2fa", "Require two-factor authentication for everyone", parse_bool, False),
        Spec(
            "server.allowed_networks",
            "Networks allowed to reach the LAN server",
            parse_networks,
            DEFAULT_ALLOWED_NETWORKS,
        ),
        Spec(
            "server.trusted_proxies",
            "Reverse proxies or tunnels on which X-Forwarded-For is believed (empty: none)",
            parse_proxies,
            "",
        ),
        Spec("general.business_name", "Business name", parse_str, ""),
        Spec("general.timezone", "Time zone for dates and times", parse_timezone, machine_timezone()),
        Spec("whatsapp.app_secret", "Meta app secret (checks webhook signatures)", parse_str, None, secret=True),
        Spec("whatsapp.verify_token", "Webhook verify token (Meta's callback setup)", parse_str, None, secret=True),
        Spec("whatsapp.access_token", "Access token (permanent system-user token)", parse_str, None, secret=True),
        Spec("whatsapp.phone_number_id", "Phone number ID", parse_digits, None),
        Spec("whatsapp.waba_id", "WhatsApp Business Account ID", parse_digits, None),
        Spec("whatsapp.api_version", "Graph API version", parse_api_version, "v26.0"),
        Spec(
            "whatsapp.graph_base_url",
            "Graph API address",
            parse_http_url,
            "https://graph.facebook.com",
            check=check_secret_destination,
        ),
        Spec("whatsapp.read_receipts", "Send read receipts to customers", parse_bool, True),
        Spec("whatsapp.callback_url", "Callback URL Meta sends webhooks to (public HTTPS)", parse_http_url, None),
        Spec("inbound.mode", "How Meta's webhooks reach SigDesk (relay or direct)", parse_inbound_mode, "direct"),
        Spec("relay.url", "Relay address", parse_http_url, None, check=check_secret_destination),
        Spec("relay.token", "Relay access token (from pairing)", parse_str, None, secret=True),
        Spec("relay.install", "Relay install ID (from pairing)", parse_str, None),
        Spec("retention.messages_days", "Delete messages older than this many days (0 keeps them)", parse_days, 0),
        Spec(
            "retention.audit_days", "Delete audit log entries older than this many days (0 keeps them)", parse_days, 365
        ),
        Spec("retention.logins_days", "Delete sign-in history older than this many days (0 keeps it)", parse_days, 365),
        Spec(
            "retention.backups_days",
            "Delete backups in the backup folder older than this many days (0 keeps them)",
            parse_days,
            30,
        ),
        Spec("backup.folder", "Backup folder (e.g. a USB drive or a synced folder)", parse_str, None),
        Spec("backup.schedule", "Automatic backups (off, daily or weekly)", parse_schedule, "off"),
        Spec("backup.time", "Time of day for automatic backups (business time zone)", parse_clock, "02:00"),
        Spec(
            "backup.passphrase",
            "Passphrase for automatic backups",
            parse_passphrase,
            None,
            secret=True,
            check=check_backup_passphrase,
        ),
        Spec(
            "inbox.agents_see_all",
            "Agents see every conversation, not only their own and unassigned ones",
            parse_bool,
            False,
        ),
        Spec(
            "contacts.default_country",
            "Country of phone numbers typed without a country code (ISO code like DE; empty: always ask for one)",
            parse_country,
            machine_country(),
        ),
        Spec(
            "sales.currency",
            "Currency of prices and orders (ISO code like EUR)",
            parse_currency,
            machine_currency(),
        ),
        Spec(
            "sales.catalog_id",
            "Meta catalog ID to sync products from (empty: the one linked to the WhatsApp Business Account)",
            parse_optional_digits,
            None,
        ),
        Spec(
            "predictions.horizons",
            "Reorder prediction horizons in days (comma-separated, like 7,30,90)",
            parse_horizons,
            "7,30,90",
        ),
        Spec(
            "predictions.at_risk_margin",
            "Days an expected reorder may be late before the customer is marked at risk (0: automatic, half "
            "the customer's usual interval and at least a week)",
            parse_margin,
            0,
        ),
        Spec(
            "consent.stop_keywords",
            "Messages that opt a customer out of marketing (whole message, comma-separated)",
            parse_keywords,
            DEFAULT_STOP_KEYWORDS,
        ),
        Spec(
            "whatsapp.messaging_limit",
            "Messaging limit: customers the number may message first in 24 hours (250, 2000, 10000, 100000 or "
            "unlimited, as WhatsApp Manager shows it)",
            parse_messaging_limit,
            "250",
        ),
        Spec(
            "whatsapp.throughput",
            "Messages per second Meta allows this number (80 unless Meta raised it, up to 1000)",
            parse_rate,
            80,
        ),
        Spec("broadcasts.default_rate", "Broadcast pace in messages per second (new broadcasts)", parse_rate, 20),
        Spec(
            "broadcasts.utility_consent",
            "Who receives utility templates in a broadcast: everyone who has not opted out (not_opted_out) or "
            "only customers who opted in (opted_in)",
            parse_utility_consent,
            "not_opted_out",
        ),
        Spec(
            "broadcasts.attribution_days",
            "Days after a broadcast in which a recipient's reply or order counts for it",
            parse_attribution_days,
            7,
        ),
        Spec(
            "consent.start_keywords",
            "Messages that opt a customer back in to marketing (whole message, comma-separated)",
            parse_keywords,
            DEFAULT_START_KEYWORDS,
        ),
        Spec(
            "onboarding.step",
            "First-run setup: the step to resume at (done once finished)",
            parse_onboarding_step,
            None,
        ),
    ]
}


def spec_for(key: str) -> Spec:
    try:
        return SPECS[key]
    except KeyError:
        known = ", ".join(sorted(SPECS))
        raise SettingError(f"Unknown setting '{key}'. Known settings: {known}") from None
