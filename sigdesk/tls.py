"""Certificates for `sigdesk serve --https`: check a user's pair, or make and keep a self-signed one.

A small office rarely has a CA, so SigDesk can make its own certificate once and reuse it: the
fingerprint then stays the same and colleagues only have to confirm it in their browser once.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sigdesk.config import Config, ConfigError

log = logging.getLogger(__name__)

CERT_FILE = "https-cert.pem"
KEY_FILE = "https-key.pem"
VALIDITY = dt.timedelta(days=730)
RENEW_BEFORE = dt.timedelta(days=30)


class CertificateError(ConfigError):
    """A certificate or key file the user can fix; the message names the file."""


@dataclass(frozen=True)
class CertificatePair:
    cert_file: Path
    key_file: Path
    fingerprint: str
    not_after: dt.datetime
    names: tuple[str, ...]
    self_signed: bool
    generated: bool = False

    @property
    def expired(self) -> bool:
        return self.not_after <= dt.datetime.now(dt.timezone.utc)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER bytes, colon-separated, as browsers show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"Cannot read the {what} file {path}: {exc.strerror or exc}") from exc


def load_pair(cert_file: str | Path, key_file: str | Path) -> CertificatePair:
    """Check that both files are readable PEM and that the key belongs to the certificate."""
    cert_file, key_file = Path(cert_file), Path(key_file)
    try:
        chain = x509.load_pem_x509_certificates(_read(cert_file, "certificate"))
    except ValueError as exc:
        raise CertificateError(f"The certificate file {cert_file} is not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(_read(key_file, "key"), password=None)
    except TypeError as exc:
        raise CertificateError(
            f"The key file {key_file} is password-protected; SigDesk needs an unencrypted key"
        ) from exc
    except ValueError as exc:
        raise CertificateError(f"The key file {key_file} is not a PEM private key") from exc
    cert = chain[0]
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise CertificateError(f"The key file {key_file} does not belong to the certificate {cert_file}")
    try:
        # what the server will do at start: catches what OpenSSL refuses, such as keys too weak for its policy
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        raise CertificateError(
            f"The certificate file {cert_file} with key {key_file} cannot be used for TLS: {reason}"
        ) from exc
    return CertificatePair(
        cert_file,
        key_file,
        fingerprint(cert),
        cert.not_valid_after_utc,
        _names(cert),
        cert.issuer == cert.subject,
    )


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(name.value) for name in san)


def local_names(extra_addresses: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Host names and addresses colleagues may type, for the certificate's names; best effort."""
    hostnames = ["localhost"]
    addresses = ["127.0.0.1", "::1", *extra_addresses]
    hostname = socket.gethostname()
    if hostname and hostname.isascii() and hostname not in hostnames:
        hostnames.append(hostname)
    try:
        for *_rest, sockaddr in socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP):
            addresses.append(str(sockaddr[0]).split("%")[0])
    except (OSError, UnicodeError):
        log.debug("could not resolve this machine's own host name")
    addresses += _routed_ipv6()
    unique = list(dict.fromkeys(str(ipaddress.ip_address(address)) for address in addresses))
    return hostnames, unique


def _routed_ipv6() -> list[str]:
    """This machine's IPv6 source address, if it has a routed one (UDP connect picks a route, sends nothing)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.connect(("2001:db8::1", 1))
            address = ipaddress.ip_address(probe.getsockname()[0].split("%")[0])
    except (OSError, ValueError):
        return []
    return [] if address.is_loopback or address.is_link_local else [str(address)]


def generate(cert_file: Path, key_file: Path, hostnames: Iterable[str], addresses: Iterable[str]) -> CertificatePair:
    """Write a new self-signed EC P-256 certificate and its key (owner-only) in place of any old pair."""
    key = ec.generate_private_key(ec.SECP256R1())
    hostnames = list(hostnames)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "SigDesk"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SigDesk (self-signed)"),
        ]
    )
    sans = [x509.DNSName(host) for host in hostnames] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # old certificate out, key in, then the certificate: a crash at any point leaves no certificate,
    # which the next start answers with a fresh pair, never a certificate with the wrong key
    cert_file.unlink(missing_ok=True)
    _write_atomic(key_file, key_pem, 0o600)
    _write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificatePair(
        cert_file,
        key_file,
        fingerprint(cert),
        cert.not_valid_after_utc,
        _names(cert),
        self_signed=True,
        generated=True,
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def certificate_for(
    config: Config,
    cert_file: str | Path | None,
    key_file: str | Path | None,
    extra_addresses: Iterable[str] = (),
) -> CertificatePair:
    """The user's pair when given, else the data dir's own self-signed one."""
    if cert_file is not None and key_file is not None:
        return load_pair(cert_file, key_file)
    config.ensure_data_dir()
    return ensure_self_signed(config.data_dir, extra_addresses)


def ensure_self_signed(data_dir: Path, extra_addresses: Iterable[str] = ()) -> CertificatePair:
    """The data dir's own certificate: reused while valid, made anew when missing or about to expire."""
    cert_file, key_file = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_file.exists() and key_file.exists():
        pair = load_pair(cert_file, key_file)
        if pair.not_after - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE:
            return pair
        log.warning("the self-signed HTTPS certificate expires on %s; making a new one", pair.not_after.date())
    hostnames, addresses = local_names(extra_addresses)
    try:
        return generate(cert_file, key_file, hostnames, addresses)
    except OSError as exc:
        raise CertificateError(f"Cannot write the HTTPS certificate in {data_dir}: {exc.strerror or exc}") from exc
