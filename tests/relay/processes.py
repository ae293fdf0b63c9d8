"""Real processes for the relay's end-to-end tests: the relay, SigDesk, a sender, and a proxy that kills."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from click.testing import CliRunner
from sqlalchemy import func, select

from sigdesk.cli import main
from sigdesk.db import Database
from sigdesk.relay import installs
from sigdesk.relay.schema import open_relay_database

ROOT = Path(__file__).resolve().parents[2]
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def until(check, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in PROXY_VARIABLES and not key.startswith("SIGDESK_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Process:
    """A `python -m sigdesk ...` child with its output in a log file (shown when a test fails)."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, health_url: str, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.health_url = health_url
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0, env: dict[str, str] | None = None) -> "Process":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sigdesk", *self.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(env if env is not None else self.env),
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
                try:
                    if client.get(self.health_url, timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} did not start:\n{self.output()}")
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when power or the OOM killer ends a process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


class Relay:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "relay"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{self.dir / 'relay.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            "relay",
            [
                "--data-dir",
                str(self.dir),
                "relay",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                self.db_url,
            ],
            tmp,
            f"{self.url}/healthz",
        )

    def add_install(self, name: str) -> installs.Credentials:
        database = open_relay_database(self.db_url)
        try:
            with database.session() as session:
                return installs.create_install(session, name)
        finally:
            database.dispose()

    def hook_url(self, credentials: installs.Credentials) -> str:
        return f"{self.url}/hook/{credentials.hook_path}"

    def status(self, token: str) -> dict:
        return httpx.get(f"{self.url}/v1/status", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()


class Desktop:
    """SigDesk's LAN server, as `sigdesk serve` runs it, with its own data dir."""

    def __init__(self, tmp: Path, name: str = "desktop") -> None:
        self.data_dir = tmp / name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = f"sqlite:///{self.data_dir / 'sigdesk.db'}"
        self.process = Process(
            name,
            ["--data-dir", str(self.data_dir), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            tmp,
            f"{self.url}/healthz",
        )

    def cli(self, *args: str, input: str | None = None) -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(self.data_dir), *args], input=input)
        assert result.exit_code == 0, result.output
        return result.output

    def configure(self, relay: Relay, credentials: installs.Credentials, app_secret: str) -> str:
        self.cli("settings", "set", "whatsapp.app_secret", "--stdin", input=app_secret)
        self.cli("relay", "pair", "--url", relay.url, "--code", credentials.pairing_code)
        return self.cli("settings", "get", "relay.token", "--reveal").strip()

    def counts(self) -> dict:
        from sigdesk.models import Contact, Conversation, Message, RejectedDelivery, RelayReceipt, WebhookDelivery

        database = Database(self.db_url)
        try:
            with database.session() as session:

                def count(model, *where):
                    return session.scalar(select(func.count()).select_from(model).where(*where))

                return {
                    "deliveries": count(WebhookDelivery),
                    "processed": count(WebhookDelivery, WebhookDelivery.state == "processed"),
                    "quarantined": count(RejectedDelivery),
                    "receipts": count(RelayReceipt),
                    "messages": count(Message),
                    "distinct_wamids": session.scalar(select(func.count(func.distinct(Message.wamid)))),
                    "contacts": count(Contact),
                    "unread": session.scalar(select(func.coalesce(func.sum(Conversation.unread_count), 0))),
                    "wamids": set(session.scalars(select(Message.wamid))),
                }
        finally:
            database.dispose()


def send_all(url: str, bodies: list[tuple[bytes, dict]], threads: int = 8) -> Counter:
    local = threading.local()

    def post(item) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(trust_env=False, timeout=30)
        body, headers = item
        return local.client.post(url, content=body, headers=headers).status_code

    with ThreadPoolExecutor(threads) as pool:
        return Counter(pool.map(post, bodies))


class KillingProxy:
    """An HTTP proxy (as HTTP_PROXY points at) that passes SigDesk's pulls to the relay and SIGKILLs
    SigDesk the moment it sends an acknowledgement, so the ack never arrives."""

    def __init__(self) -> None:
        self.victim: Process | None = None
        self.killed = threading.Event()
        self.forwarded: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def _forward(self) -> None:
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "POST" and target.path == "/v1/ack":
                    proxy.victim.kill()
                    proxy.killed.set()
                    self.close_connection = True
                    return
                proxy.forwarded.append(f"{self.command} {target.path}")
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() in ("authorization", "content-type")
                }
                with httpx.Client(trust_env=False, timeout=60) as client:
                    answer = client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = _forward
            do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
