"""Opens the real SigDesk window, reports what it showed as one JSON line, and closes it.

Run by tests/test_desktop.py under `xvfb-run`, as its own process: a GUI toolkit owns the main thread
and cannot be started twice, so it cannot run inside pytest itself.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

PAINT_WAIT_SECONDS = 0.5


def window_grabber(path: str) -> Callable[[object], bool]:
    """A screenshot of the window, taken on the GUI thread (Qt allows it nowhere else)."""
    from qtpy.QtCore import QObject, Qt, Signal

    class Grabber(QObject):
        requested = Signal(object)

        def __init__(self) -> None:
            super().__init__()
            self.saved = False
            self.requested.connect(self.grab, Qt.ConnectionType.BlockingQueuedConnection)

        def grab(self, native) -> None:
            from qtpy.QtWidgets import QApplication

            self.saved = QApplication.primaryScreen().grabWindow(native.winId()).save(path, "PNG")

    grabber = Grabber()  # created here, on the main thread, which Qt's event loop will run on

    def grab(window) -> bool:
        grabber.requested.emit(window.native)
        return grabber.saved

    return grab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--screenshot", help="save a PNG of the screen here once the page has loaded")
    args = parser.parse_args(argv)

    from sigdesk import desktop
    from sigdesk.app import create_app
    from sigdesk.config import Config

    config = Config(data_dir=args.data_dir, database_url=f"sqlite:///{args.data_dir / 'sigdesk.db'}", bcrypt_rounds=4)
    app = create_app(config)
    grab = window_grabber(args.screenshot) if args.screenshot else None
    report: dict = {"echo": []}
    started = time.monotonic()
    first_load = threading.Event()

    def on_shown(window) -> None:
        if first_load.is_set():
            return
        first_load.set()
        report["loaded_after"] = round(time.monotonic() - started, 2)
        try:
            report["url"] = window.get_current_url()
            # run_js, not evaluate_js: evaluate_js wraps the script in eval(), which SigDesk's CSP refuses
            report["title"] = window.run_js("document.title")
            report["heading"] = window.run_js("document.querySelector('h1').textContent")
            report["stylesheet_applied"] = window.run_js("getComputedStyle(document.body).display === 'flex'")
            report["probed_after"] = round(time.monotonic() - started, 2)
            if grab is not None:
                time.sleep(PAINT_WAIT_SECONDS)
                report["screenshot_saved"] = grab(window)
        except Exception as exc:  # noqa: BLE001 - the report must still be printed and the window closed
            report["error"] = repr(exc)
        finally:
            window.destroy()

    report["exit_code"] = desktop.run(app, echo=report["echo"].append, on_shown=on_shown)
    report["seconds"] = round(time.monotonic() - started, 2)
    app.extensions["sigdesk"].database.dispose()
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
