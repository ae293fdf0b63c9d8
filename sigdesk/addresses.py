"""Where SigDesk may send a secret: the guard for every address an admin can type, and for every connection.

The Graph API address receives the WhatsApp access token and the relay address receives the pairing
secret, so an address that points at the cloud's metadata service or a link-local device would hand
them over (and make SigDesk a port scanner). Loopback and private networks stay allowed: test doubles,
proxies and an office relay live there.

A name checked when it is saved can point elsewhere by the time the token is sent (a DNS change, or a
rebinding name server answering differently each time), so the clients that carry secrets connect through
`GuardedTransport`: it resolves the name once, refuses if any answer is a refused address, connects to
exactly the addresses it checked and checks the peer it reached, all before a byte is sent.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from sigdesk.errors import UserError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
# Metadata services outside link-local space: Alibaba Cloud's, and AWS's IPv6 endpoint.
METADATA_IPS = frozenset({ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def unmapped(ip: IP) -> IP:
    """An IPv4 address written the IPv6 way (::ffff:10.0.0.1) is that IPv4 address, so one rule (an
    allow-list, a refusal) covers both spellings."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address leads to, if it is one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        return ip.sixtofour
    return None


def refused_ip(ip: IP) -> bool:
    """Link-local, multicast, unspecified, reserved or a metadata service, however it is spelled: an IPv4
    address inside an IPv6 one (mapped, NAT64, 6to4) is judged as the IPv4 address it reaches."""
    ip = unmapped(ip)
    inner = _embedded_ipv4(ip)
    if inner is not None and refused_ip(inner):
        return True
    return ip not in NAT64 and _refused_as_such(ip)  # NAT64 is in ::/8, "reserved": judge what it reaches


def _refused_as_such(ip: IP) -> bool:
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip in METADATA_IPS


def _refusal(field: str | None, host: str, ip: IP | None = None) -> str:
    prefix = f"{field}: " if field else ""
    if ip is None:
        return f"{prefix}{host} is a cloud metadata service; SigDesk will not send secrets there."
    where = host if host == str(ip) else f"{host} points at {ip}, which"
    return f"{prefix}{where} is a link-local or metadata address; SigDesk will not send secrets there."


def _ip(text: str) -> IP:
    return ipaddress.ip_address(text.split("%")[0])


def _resolve(host: str, port: int) -> list[IP]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(_ip(str(info[4][0])) for info in infos))


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
        raise UserError(_refusal(field, host), field=field)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = []
        if resolve:
            try:
                addresses = _resolve(host, port or (443 if parts.scheme == "https" else 80))
            except (OSError, UnicodeError):
                addresses = []
    for ip in addresses:
        if refused_ip(ip):
            raise UserError(_refusal(field, host, ip), field=field)
    return text


# --- at connection time -----------------------------------------------------------------------------


class RefusedPeer(httpcore.ConnectError):
    """The connection would reach an address SigDesk never sends secrets to; raised before a byte is sent.
    httpx passes it on as the cause of an httpx.ConnectError, whose message is this one."""


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with the address rule applied to every TCP connection it opens."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        name = host.lower().rstrip(".")
        if name in METADATA_HOSTS:
            raise RefusedPeer(_refusal(None, name))
        try:
            addresses = _resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        for ip in addresses:
            if refused_ip(ip):
                raise RefusedPeer(_refusal(None, name, ip))
        failure: Exception = httpcore.ConnectError(f"{name} has no address")
        for ip in addresses:  # the addresses just checked, never a second lookup of the name
            try:
                stream = self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")  # what the socket reached (None from a test double)
            if peer and refused_ip(_ip(str(peer[0]))):
                stream.close()
                raise RefusedPeer(_refusal(None, name, _ip(str(peer[0]))))
            return stream
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("SigDesk sends secrets over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process: making one (httpx's CA bundle) costs 20 ms of CPU,
    and a broadcast makes a client per sending thread."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (TLS from the environment, as before), connecting through GuardedBackend.
    httpx takes no network backend, so its connection pool is replaced; tests/test_addresses.py proves
    the guard is in the path (a rebinding name never gets the token)."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None, connections: int = 20) -> None:
        super().__init__(verify=tls_context())
        self._pool.close()
        self._pool = httpcore.ConnectionPool(  # the guarded backend
            ssl_context=tls_context(),
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(inner),
        )


def guarded_mounts(connections: int = 20) -> dict[str, httpx.BaseTransport]:
    """For httpx.Client(mounts=...): every direct connection goes through the guard, while a proxy from the
    environment (HTTPS_PROXY) still applies. The proxy, and hosts listed in NO_PROXY, are the server
    operator's choice, not an admin's: for those only the check of the saved address applies."""
    return {"all://": GuardedTransport(connections=connections)}


def refusal(exc: BaseException) -> str | None:
    """The refusal behind an httpx error, in words fit to show; None when it was some other failure."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, RefusedPeer):
            return str(cause)
        cause = cause.__cause__
    return None
