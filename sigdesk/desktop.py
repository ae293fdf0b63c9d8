"""The owner's desktop window: a private server on a free loopback port inside a pywebview window."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Callable

from flask import Flask

from sigdesk.security import DESKTOP_WINDOW, is_loopback
from sigdesk.server import ServerThread

log = logging.getLogger(__name__)

WINDOW_TITLE = "SigDesk"
OPEN_MESSAGE = "SigDesk window open; close it to stop SigDesk."


def gui_problem() -> str | None:
    """Why no window can open here, or None when one can."""
    if importlib.util.find_spec("webview") is None:
        return "pywebview is not installed"
    if sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return "no display is available (DISPLAY is not set)"
        has_qt = importlib.util.find_spec("PySide6") is not None and importlib.util.find_spec("qtpy") is not None
        has_gtk = importlib.util.find_spec("gi") is not None
        if not (has_qt or has_gtk):
            return "no GUI toolkit for pywebview (install PySide6 and qtpy, or PyGObject)"
    return None


def linux_gui() -> str | None:
    """Qt unless SIGDESK_GUI=gtk asks for the system's WebKitGTK (or Qt is not installed)."""
    if not sys.platform.startswith("linux"):
        return None
    if os.environ.get("SIGDESK_GUI", "").lower() == "gtk":
        return "gtk"
    if importlib.util.find_spec("PySide6") is not None and importlib.util.find_spec("qtpy") is not None:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
            if "--no-sandbox" not in flags:
                os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
        return "qt"
    return "gtk"


def window_wsgi(app: Flask) -> Callable:
    """The app as the desktop's private server serves it: a request from this machine is the window's
    (or a browser on the same machine, which loopback always admitted before) and gets through whatever
    the allow-list and the trusted proxies say. This server listens on 127.0.0.1 at a port picked at
    launch; a tunnel or proxy forwards to `sigdesk serve`, never to it."""

    def serve(environ: dict, start_response: Callable):
        environ[DESKTOP_WINDOW] = is_loopback(environ.get("REMOTE_ADDR"))
        return app(environ, start_response)

    return serve


def run(
    app: Flask,
    echo: Callable[[str], None] = print,
    on_shown: Callable | None = None,
    on_listening: Callable[[list[str]], object] | None = None,
) -> int:
    """Open the window; returns when it is closed, after the server has stopped. The caller holds the
    data dir's lock (sigdesk.datadir.hold) from before create_app; `on_listening` gets the private
    server's address (the lock records it, so a second start can say where SigDesk runs)."""
    server = ServerThread(app, wsgi=window_wsgi(app)).start()
    if on_listening is not None:
        on_listening([f"{server.url}/"])
    try:
        problem = gui_problem()
        if problem:
            echo(f"Cannot open the SigDesk window: {problem}. Opening your web browser instead.")
            try:
                if not webbrowser.open(f"{server.url}/"):
                    echo("No web browser could be started; open the address below in one.")
                echo(f"SigDesk is at {server.url}/ — press Ctrl+C to stop.")
                while not server.stopped.wait(0.5):  # a timed wait, so Ctrl+C gets through on Windows too
                    pass
            except KeyboardInterrupt:
                echo("Stopping SigDesk.")
            return 0
        import webview

        window = webview.create_window(WINDOW_TITLE, f"{server.url}/", width=1280, height=800, min_size=(400, 500))
        announced = threading.Event()

        def loaded() -> None:
            # every page load fires this; the terminal hears of the first one only
            if not announced.is_set():
                announced.set()
                echo(OPEN_MESSAGE)

        window.events.loaded += loaded
        if on_shown is not None:
            window.events.loaded += lambda: on_shown(window)
        webview.start(
            gui=linux_gui(), private_mode=False, storage_path=str(app.extensions["sigdesk"].config.data_dir / "webview")
        )
        return 0
    finally:
        server.stop()
