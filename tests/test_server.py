import datetime as dt
import hashlib
import ipaddress
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sigdesk import tls
from sigdesk.app import create_app
from sigdesk.cli import main
from sigdesk.server import https_server, stop_https
from tests.commanding import ctrl_c_as_usual

ROOT = Path(__file__).resolve().parents[1]


def trusting(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue_from_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate as an office IT person would bring it: RSA, signed by their own CA, chain in one file."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Test Office CA"))
        .issuer_name(_name("Test Office CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("crm.office.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "office-ca.pem", folder / "crm.pem", folder / "crm.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


class CliServer:
    """`sigdesk serve` in a child process, its output collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {key: value for key, value in os.environ.items() if key != "SIGDESK_DATABASE_URL"}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sigdesk", "--data-dir", str(data_dir), "serve", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=ctrl_c_as_usual,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60) -> "CliServer":
        assert self.ready.wait(timeout), f"server did not start:\n{self.output}"
        assert self.process.poll() is None, f"server exited:\n{self.output}"
        return self

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=15)
        self.reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.reader.join(timeout=5)
        self.process.stdout.close()


def test_serve_https_makes_a_certificate_and_serves_over_tls_only(tmp_path):
    data_dir = tmp_path / "data"
    server = CliServer(data_dir, "--https", "--host", "127.0.0.1", "--port", "0")
    try:
        server.wait_ready()
        port = int(re.search(r"https://127\.0\.0\.1:(\d+)/", server.output).group(1))
        pair = tls.load_pair(data_dir / tls.CERT_FILE, data_dir / tls.KEY_FILE)
        assert oct(pair.key_file.stat().st_mode & 0o777) == oct(0o600)
        assert f"SHA-256 fingerprint: {pair.fingerprint}" in server.output
        served = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
        assert hashlib.sha256(served).digest().hex(":").upper() == pair.fingerprint

        for host in ("127.0.0.1", "localhost"):
            with httpx.Client(
                base_url=f"https://{host}:{port}", verify=trusting(pair.cert_file), trust_env=False
            ) as client:
                assert client.get("/healthz").json()["status"] == "ok"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"https://127.0.0.1:{port}/healthz", trust_env=False)  # untrusted without the certificate

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as plain:
            try:
                assert plain.get("/healthz").status_code != 200
            except httpx.TransportError:
                pass
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}", verify=trusting(pair.cert_file), trust_env=False
        ) as client:
            setup = client.get("/setup")
        assert setup.status_code == 200
        cookie = setup.headers["set-cookie"]
        assert cookie.startswith("sigdesk_session=") and "; Secure" in cookie and "HttpOnly" in cookie
        assert "max-age" in setup.headers["strict-transport-security"]

        assert server.interrupt() == 0
        assert "Stopping SigDesk." in server.output
    finally:
        server.close()


@pytest.fixture
def https_app(config):
    config.https = True
    application = create_app(config)
    yield application
    application.extensions["sigdesk"].database.dispose()


def test_https_server_uses_a_certificate_the_user_brings(https_app, tmp_path):
    ca_file, cert_file, key_file = issue_from_test_ca(tmp_path)
    pair = tls.load_pair(cert_file, key_file)
    assert not pair.self_signed
    server = https_server(https_app, "127.0.0.1", 0, pair, threads=2)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        with httpx.Client(
            base_url=f"https://localhost:{server.bind_addr[1]}", verify=trusting(ca_file), trust_env=False
        ) as client:
            assert client.get("/healthz").status_code == 200
            setup = client.get("/setup")
        assert "; Secure" in setup.headers["set-cookie"]
    finally:
        stop_https(server)
        thread.join(timeout=10)


def test_https_stop_frees_an_idle_worker_that_missed_its_shutdown_request(https_app, tmp_path):
    _ca_file, cert_file, key_file = issue_from_test_ca(tmp_path)
    server = https_server(https_app, "127.0.0.1", 0, tls.load_pair(cert_file, key_file), threads=2)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    workers = list(server.requests._threads)
    server.requests._threads.pop()  # cheroot 11 sometimes ends up one shutdown request short, like this
    started = time.monotonic()
    stop_https(server, timeout=0.5)
    for worker in workers:
        worker.join(timeout=2)
    assert time.monotonic() - started < 5
    assert [worker.name for worker in workers if worker.is_alive()] == []
    thread.join(timeout=10)


@pytest.fixture
def cli_serve(runner, tmp_path, monkeypatch):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"

    def run(cert: Path | None, key: Path | None):
        args = ["--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", "0"]
        args += ["--cert", str(cert)] if cert else []
        args += ["--key", str(key)] if key else []
        return runner.invoke(main, args)

    run.data_dir = data_dir
    return run


def test_serve_refuses_unusable_certificate_files_with_one_line(cli_serve, tmp_path):
    mine = tls.ensure_self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other = tls.ensure_self_signed(tmp_path / "other")
    junk = tmp_path / "notes.txt"
    junk.write_text("not a certificate")
    missing = tmp_path / "missing.pem"
    cases = [
        (missing, mine.key_file, f"Cannot read the certificate file {missing}"),
        (mine.cert_file, missing, f"Cannot read the key file {missing}"),
        (junk, mine.key_file, f"The certificate file {junk} is not a PEM certificate"),
        (mine.cert_file, junk, f"The key file {junk} is not a PEM private key"),
        (
            mine.cert_file,
            other.key_file,
            f"The key file {other.key_file} does not belong to the certificate {mine.cert_file}",
        ),
    ]
    for cert, key, message in cases:
        result = cli_serve(cert, key)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.output
    assert not cli_serve.data_dir.exists()  # refused before anything was started or created


def test_serve_needs_both_cert_and_key(cli_serve, tmp_path):
    pair = tls.ensure_self_signed(tmp_path)
    result = cli_serve(pair.cert_file, None)
    assert result.exit_code == 2
    assert "Give both --cert and --key" in result.output


def test_ctrl_c_stops_the_plain_server_saying_so_with_exit_0(tmp_path):
    server = CliServer(tmp_path / "data", "--host", "127.0.0.1", "--port", "0")
    try:
        server.wait_ready()
        assert server.interrupt() == 0, server.output
        assert "Stopping SigDesk." in server.output
        assert "Traceback" not in server.output and "Aborted" not in server.output
    finally:
        server.close()
