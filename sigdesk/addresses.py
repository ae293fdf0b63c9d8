"""Where SigDesk may send a secret: the guard for every address an admin can type.

The Graph API address receives the WhatsApp access token and the relay address receives the pairing
secret, so an address that points at the cloud's metadata service or a link-local device would hand
them over (and make SigDesk a port scanner). Loopback and private networks stay allowed: test doubles,
proxies and an office relay live there.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from sigdesk.errors import UserError

METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved or str(ip) == "fd00:ec2::254"


def check_outbound_url(url: str, field: str, *, resolve: bool = True) -> str:
    """The URL, normalised, or a UserError naming `field`; `resolve` also checks what the name points at."""
    text = (url or "").strip().rstrip("/")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise UserError(f"{field}: not a valid address ({error}).", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{field}: give a full http:// or https:// address.", field=field)
    if parts.username or parts.password:
        raise UserError(f"{field}: the address must not carry a user name or password.", field=field)
    host = parts.hostname.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise UserError(
            f"{field}: {host} is a cloud metadata service; SigDesk will not send secrets there.", field=field
        )
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = []
        if resolve:
            try:
                infos = socket.getaddrinfo(
                    host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                infos = []
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        if _refused_ip(ip):
            where = host if host == str(ip) else f"{host} points at {ip}, which"
            raise UserError(
                f"{field}: {where} is a link-local or metadata address; SigDesk will not send secrets there.",
                field=field,
            )
    return text
