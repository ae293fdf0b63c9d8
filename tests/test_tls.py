import datetime as dt
import socket
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from sigdesk import tls
from sigdesk.tls import CertificateError


def write_self_signed(folder, days: int, name: str = "localhost", key=None):
    """A pair made outside SigDesk, the way another tool or an older SigDesk would leave it."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / tls.CERT_FILE, folder / tls.KEY_FILE
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, key


def test_self_signed_certificate_is_made_once_and_reused(tmp_path):
    first = tls.ensure_self_signed(tmp_path, ["192.0.2.7"])
    assert first.generated and first.self_signed
    assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
    again = tls.ensure_self_signed(tmp_path, ["192.0.2.7"])
    assert not again.generated
    assert again.fingerprint == first.fingerprint
    assert again.key_file.read_bytes() == first.key_file.read_bytes()
    assert sorted(tmp_path.iterdir()) == sorted([first.cert_file, first.key_file])  # no temp files left


def test_self_signed_certificate_names_this_machine_and_lasts_about_two_years(tmp_path):
    pair = tls.ensure_self_signed(tmp_path, ["192.0.2.7"])
    for name in ("localhost", "127.0.0.1", "::1", "192.0.2.7", socket.gethostname()):
        assert name in pair.names
    days = (pair.not_after - dt.datetime.now(dt.timezone.utc)).days
    assert 720 <= days <= 731


def test_fingerprint_is_the_sha256_browsers_show(tmp_path):
    pair = tls.ensure_self_signed(tmp_path)
    cert = x509.load_pem_x509_certificate(pair.cert_file.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    assert pair.fingerprint == digest.finalize().hex(":").upper()
    assert len(pair.fingerprint.split(":")) == 32


def test_certificate_close_to_expiry_is_replaced(tmp_path):
    write_self_signed(tmp_path, days=10)
    old = tls.load_pair(tmp_path / tls.CERT_FILE, tmp_path / tls.KEY_FILE)
    renewed = tls.ensure_self_signed(tmp_path)
    assert renewed.generated and renewed.fingerprint != old.fingerprint
    assert stat.S_IMODE(renewed.key_file.stat().st_mode) == 0o600


def test_user_pair_that_matches_loads(tmp_path):
    cert_file, key_file, _key = write_self_signed(tmp_path, days=90, name="crm.example.com")
    pair = tls.load_pair(cert_file, key_file)
    assert pair.cert_file == cert_file and not pair.expired and not pair.generated


def test_missing_certificate_is_named(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(CertificateError, match=f"Cannot read the certificate file {missing}"):
        tls.load_pair(missing, tmp_path / "key.pem")


def test_directory_given_as_key_is_named(tmp_path):
    cert_file, _key_file, _key = write_self_signed(tmp_path, days=90)
    with pytest.raises(CertificateError, match=f"Cannot read the key file {tmp_path}"):
        tls.load_pair(cert_file, tmp_path)


def test_non_pem_files_are_refused_by_name(tmp_path):
    cert_file, key_file, key = write_self_signed(tmp_path, days=90)
    junk = tmp_path / "junk.txt"
    junk.write_text("hello, not a certificate\n")
    with pytest.raises(CertificateError, match=f"certificate file {junk} is not a PEM certificate"):
        tls.load_pair(junk, key_file)
    with pytest.raises(CertificateError, match=f"key file {junk} is not a PEM private key"):
        tls.load_pair(cert_file, junk)
    der = tmp_path / "cert.der"
    der.write_bytes(x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(serialization.Encoding.DER))
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        tls.load_pair(der, key_file)
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        tls.load_pair(key_file, key_file)


def test_key_of_another_certificate_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert_a, _key_a, _ = write_self_signed(tmp_path / "a", days=90)
    _cert_b, key_b, _ = write_self_signed(tmp_path / "b", days=90)
    with pytest.raises(CertificateError, match=f"key file {key_b} does not belong to the certificate {cert_a}"):
        tls.load_pair(cert_a, key_b)


def test_password_protected_key_is_refused_with_a_reason(tmp_path):
    cert_file, key_file, key = write_self_signed(tmp_path, days=90)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(CertificateError, match="password-protected"):
        tls.load_pair(cert_file, key_file)


def test_damaged_self_signed_pair_is_reported_not_silently_replaced(tmp_path):
    pair = tls.ensure_self_signed(tmp_path)
    pair.cert_file.write_text("damaged")
    with pytest.raises(CertificateError, match=str(pair.cert_file)):
        tls.ensure_self_signed(tmp_path)
    assert pair.cert_file.read_text() == "damaged"


def test_key_too_weak_for_openssl_is_refused_before_serving(tmp_path):
    cert_file, key_file, _key = write_self_signed(tmp_path, days=90, key=rsa.generate_private_key(65537, 1024))
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_file, key_file)
    except ssl.SSLError:
        pass
    else:
        pytest.skip("this OpenSSL's security level accepts 1024-bit RSA")
    with pytest.raises(
        CertificateError, match=f"{cert_file} with key {key_file} cannot be used for TLS: ee key too small"
    ):
        tls.load_pair(cert_file, key_file)
