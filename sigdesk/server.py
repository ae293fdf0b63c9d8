"""Run the app under waitress: in the foreground for the LAN, or in a thread for the desktop."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
from flask import Flask
from waitress.server import create_server

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


class ServerThread:
    """A waitress server on its own thread, stoppable from the thread that started it."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> None:
        self.server = create_server(
            app, host=host, port=port, threads=threads, ident="SigDesk",
            max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 65536, clear_untrusted_proxy_headers=True,
        )
        self.host = host
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self._run, name="sigdesk-server", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run()
        except OSError:
            # closing the listening socket from another thread ends the loop this way
            log.debug("server loop ended")

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        wait_until_up(f"{self.url}/healthz", timeout)
        return self

    def stop(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"SigDesk did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.05)


def lan_addresses() -> list[str]:
    """Addresses colleagues can type into their browser; best effort, no traffic sent."""
    found: list[str] = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it only picks a route
        found.append(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return [address for address in found if not address.startswith("127.")]


def serve(app: Flask, host: str, port: int, threads: int = 8, echo=print) -> None:
    server = create_server(
        app, host=host, port=port, threads=threads, ident="SigDesk",
        max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + 65536, clear_untrusted_proxy_headers=True,
    )
    actual = server.effective_port
    echo(f"SigDesk is running on http://127.0.0.1:{actual}/")
    if host in ("0.0.0.0", "::"):
        for address in lan_addresses():
            echo(f"Colleagues on the office network can open http://{address}:{actual}/")
    echo("Press Ctrl+C to stop.")
    try:
        server.run()
    except KeyboardInterrupt:
        echo("Stopping SigDesk.")
    finally:
        server.close()
