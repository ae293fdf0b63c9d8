"""Run the app under waitress (plain HTTP: the LAN and the desktop) or cheroot (HTTPS: waitress has no TLS)."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from sigdesk.events.bus import MAX_STREAMS

if TYPE_CHECKING:
    from cheroot.wsgi import Server as CherootServer

    from sigdesk.tls import CertificatePair

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


class ServerThread:
    """A waitress server on its own thread, stoppable from the thread that started it."""

    def __init__(
        self, app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = 8, wsgi: Callable | None = None
    ) -> None:
        """`wsgi` serves instead of the app itself (the desktop marks its window's requests this way)."""
        self.server = _waitress(app, host, port, threads, wsgi)
        self.host = host
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self._run, name="sigdesk-server", daemon=True)
        # Thread.is_alive() and join() are wrong after Ctrl+C interrupted a join() (CPython before 3.13)
        self.stopped = threading.Event()
        self.worker = app.extensions["sigdesk"].worker
        self.events = app.extensions["sigdesk"].events

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
        finally:
            self.stopped.set()

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self.thread.start()
        wait_until_up(f"{self.url}/healthz", timeout)
        self.worker.start()
        return self

    def stop(self) -> None:
        """Finish requests in progress, then close keep-alive connections too (the loop runs while any is open)."""
        self.worker.stop()
        self.events.disconnect_all()
        if self.thread.ident is None or self.stopped.is_set():
            self.server.close()
            self.server.task_dispatcher.shutdown()
            return
        self.server.accepting = False
        self.server.task_dispatcher.shutdown()
        try:
            self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        except OSError:
            log.warning("the server's wake-up pipe was already closed; waiting for its loop to end")
        self.stopped.wait(timeout=10)


def body_limit(app: Flask) -> int:
    """The largest request body the server reads: the app's limit, or a feature's larger upload limit
    (contact imports) that its own views check."""
    return max(app.config["MAX_CONTENT_LENGTH"], app.config.get("MAX_UPLOAD_BYTES") or 0) + 65536


def _waitress(
    app: Flask, host: str, port: int, threads: int, wsgi: Callable | None = None, sock: socket.socket | None = None
):
    """Live-update streams each hold a thread for as long as they are open: they get threads of their
    own on top, and the lookahead lets a stream notice a closed browser tab without writing to it.
    `sock`: listen on this socket (from bind()) instead of host and port."""
    where: dict = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
    return create_server(
        wsgi or app,
        **where,
        threads=threads + MAX_STREAMS,
        ident="SigDesk",
        channel_request_lookahead=1,
        max_request_body_size=body_limit(app),
        clear_untrusted_proxy_headers=False,  # the app believes them only from trusted proxies (security.py)
    )


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


def bind(host: str, port: int) -> socket.socket:
    """The port for serve(), taken before create_app: a start refused for a busy port (OSError, as
    waitress would raise) has created nothing in the data dir."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":  # as waitress does; on Windows the option would let two servers share a port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def urls(scheme: str, host: str, port: int) -> list[str]:
    """Where a server listening on host:port can be opened: on this computer first, then (listening on
    all interfaces) on the office network."""
    if host in ("0.0.0.0", "::", "", "127.0.0.1", "localhost"):
        local = "127.0.0.1"
    else:
        local = f"[{host}]" if ":" in host else host
    found = [f"{scheme}://{local}:{port}/"]
    if host in ("0.0.0.0", "::", ""):
        found += [f"{scheme}://{address}:{port}/" for address in lan_addresses()]
    return found


def settle_heap() -> None:
    """Keep what start-up made (modules, the app, SQLAlchemy's and Flask's tables: most of the heap) out of
    the garbage collector's full passes, which otherwise stop every thread of the server for 150-190 ms
    at a time: while a broadcast sent at 500/s, four such pauses each left a gap of 75-95 messages
    (tests/perf/bench_broadcast.py). Once per process, just before serving; never in tests, whose apps
    come and go."""
    gc.collect()
    gc.freeze()


def run_until_interrupted(app: Flask, run: Callable[[], object], close: Callable[[], object], echo=print) -> None:
    """The foreground server and the background worker live and stop together. "Press Ctrl+C" is said in
    here, so a Ctrl+C from the moment it shows stops SigDesk the same way (not click's "Aborted!")."""
    worker = app.extensions["sigdesk"].worker
    try:
        echo("Press Ctrl+C to stop.")
        settle_heap()
        worker.start()
        run()  # waitress swallows Ctrl+C itself and returns; the TLS server lets it through
    except KeyboardInterrupt:
        pass
    finally:
        echo("Stopping SigDesk.")
        worker.stop()
        app.extensions["sigdesk"].events.disconnect_all()
        close()


def serve(
    app: Flask,
    host: str,
    port: int,
    threads: int = 8,
    echo=print,
    sock: socket.socket | None = None,
    on_listening: Callable[[list[str]], object] | None = None,
) -> None:
    """Serve in the foreground, on `sock` (from bind()) if given. The caller holds the data dir's lock
    (sigdesk.datadir.hold) from before create_app, so a restore cannot swap the folder away meanwhile;
    `on_listening` gets the addresses to open once the port is taken (the lock records them)."""
    server = _waitress(app, host, port, threads, sock=sock)
    addresses = urls("http", host, server.effective_port)
    if on_listening is not None:
        on_listening(addresses)
    echo(f"SigDesk is running on {addresses[0]}")
    for address in addresses[1:]:
        echo(f"Colleagues on the office network can open {address}")
    run_until_interrupted(app, server.run, server.close, echo)


def _log_from_cheroot(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    # cheroot's INFO is about clients (a browser refusing the certificate, plain HTTP on the TLS port): not news
    log.log(level if level > logging.INFO else logging.DEBUG, "%s", msg, exc_info=traceback)


def https_listener(host: str, port: int, threads: int = 8) -> CherootServer:
    """A cheroot server already listening, without its app and certificate yet (https_server adds them):
    taken before create_app and the certificate, so a busy port is refused before anything is created.
    Nothing is accepted until serve(); on a failure before that, stop_https() it."""
    # imported here so plain HTTP and the desktop do not pay for them at start-up
    from cheroot import wsgi

    server = wsgi.Server((host, port), None, numthreads=threads + MAX_STREAMS, server_name="SigDesk")
    server.error_log = _log_from_cheroot  # into SigDesk's log rather than bare on stderr
    server.prepare()
    return server


def https_server(
    app: Flask, host: str, port: int, pair: CertificatePair, threads: int = 8, listener: CherootServer | None = None
) -> CherootServer:
    """A cheroot server speaking only TLS, already listening (port 0 picks a free one), on `listener`
    (from https_listener()) if given: call serve(), then stop()."""
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    server = listener if listener is not None else https_listener(host, port, threads)
    server.wsgi_app = app
    # read when a connection is accepted, so it may come after prepare()
    server.ssl_adapter = BuiltinSSLAdapter(str(pair.cert_file), str(pair.key_file))
    server.max_request_body_size = body_limit(app)
    return server


def serve_https(
    app: Flask,
    host: str,
    port: int,
    pair: CertificatePair,
    threads: int = 8,
    echo=print,
    listener: CherootServer | None = None,
    on_listening: Callable[[list[str]], object] | None = None,
) -> None:
    """Like serve(), over TLS; prints the certificate's fingerprint so people can check what their browser shows."""
    server = https_server(app, host, port, pair, threads, listener)
    addresses = urls("https", host, server.bind_addr[1])
    if on_listening is not None:
        on_listening(addresses)
    echo(f"SigDesk is running on {addresses[0]}")
    for url in addresses[1:]:
        echo(f"Colleagues on the office network can open {url}")
        address = url.removeprefix("https://").rsplit(":", 1)[0]
        if address not in pair.names:
            echo(f"  (the certificate does not name {address}; browsers will warn about the address too)")
    echo(f"Certificate: {pair.cert_file} (valid until {pair.not_after:%Y-%m-%d})")
    echo(f"SHA-256 fingerprint: {pair.fingerprint}")
    if pair.self_signed:
        echo("The certificate is self-signed: browsers warn once; accept it only if they show this fingerprint.")
    if pair.expired:
        echo("Warning: the certificate has expired; browsers will refuse it until it is renewed.")
    run_until_interrupted(app, server.serve, lambda: stop_https(server), echo)


HTTPS_STOP_SECONDS = 8.0


def stop_https(server: CherootServer, timeout: float = HTTPS_STOP_SECONDS) -> None:
    """cheroot's stop(), without a hang seen about once in ten stops (cheroot 11.1): the pool ends
    up a shutdown request short, so one idle worker thread never ends and stop() waits for it
    forever (and so would Python's exit). Spare requests are harmless once the pool has stopped."""
    from cheroot.workers.threadpool import _SHUTDOWNREQUEST

    stopper = threading.Thread(target=server.stop, name="sigdesk-https-stop", daemon=True)
    stopper.start()
    stopper.join(timeout)
    if stopper.is_alive():
        log.warning("the HTTPS server's worker threads did not all stop; asking the idle ones again")
    for _ in range(server.requests.min):
        server.requests.put(_SHUTDOWNREQUEST)
    stopper.join(timeout)
