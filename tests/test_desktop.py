"""The desktop window: a real pywebview (Qt) window under Xvfb, and the browser fallback when there is no screen."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sigdesk import datadir
from tests.commanding import ctrl_c_as_usual

pytestmark = pytest.mark.desktop

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
REQUIRE_ENV = "SIGDESK_REQUIRE_DESKTOP"
WINDOW_TIMEOUT = 60
FALLBACK_TIMEOUT = 30
GUI_MODULES = ("webview", "PySide6", "qtpy")


def _window_unavailable() -> str | None:
    if shutil.which("xvfb-run") is None:
        return "xvfb-run is not installed (Debian: apt-get install xvfb)"
    missing = [name for name in GUI_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed in this Python (pip install -e .)"
    return None


@pytest.fixture
def window_toolkit() -> None:
    reason = _window_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"cannot open a window: {reason} ({REQUIRE_ENV}=1 makes this an error)")
    pytest.skip(f"cannot open a window: {reason}")


def _environment(**changes: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY", "SIGDESK_DATA_DIR")
    }
    env.update(PYTHONUNBUFFERED="1", **changes)
    return env


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2.0)
    except httpx.TransportError:
        return False
    return True


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_window_opens_on_the_setup_page_and_closing_it_stops_the_server(window_toolkit, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "desktop-window.png"
    screenshot.unlink(missing_ok=True)
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1600x1000x24",
        sys.executable,
        "-m",
        "tests.desktop_probe",
        "--data-dir",
        str(tmp_path / "data"),
        "--screenshot",
        str(screenshot),
    ]
    # its own process group, so a hung window takes Xvfb and the probe down with it
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, errors = process.communicate(timeout=WINDOW_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, errors = process.communicate()
        pytest.fail(f"the window did not open and close within {WINDOW_TIMEOUT} s:\n{errors[-3000:]}")
    assert process.returncode == 0, errors[-3000:]
    report = json.loads(out.strip().splitlines()[-1])

    assert "error" not in report, report
    assert report["exit_code"] == 0
    assert report["echo"] == ["SigDesk window open; close it to stop SigDesk."], "no word, or the browser fallback"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/setup", report["url"])
    assert "SigDesk" in report["title"]
    assert report["heading"] == "Welcome to SigDesk"
    assert report["stylesheet_applied"] is True
    assert report["screenshot_saved"] is True and screenshot.stat().st_size > 0
    assert not _answers(report["url"].removesuffix("/setup")), "the server outlived its window"


def test_without_a_display_it_says_so_and_serves_the_browser_until_ctrl_c(tmp_path):
    opened = tmp_path / "opened-url"
    browser = tmp_path / "record-browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > "{opened}"\n')
    browser.chmod(0o755)
    process = subprocess.Popen(
        [sys.executable, "-m", "sigdesk", "--data-dir", str(tmp_path / "data"), "desktop"],
        cwd=ROOT,
        env=_environment(BROWSER=str(browser)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_usual,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl+C" in line:
                break
        output = "".join(lines)
        assert "Cannot open the SigDesk window: no display is available" in output, output
        assert "Opening your web browser instead" in output
        url = re.search(r"SigDesk is at (http://127\.0\.0\.1:\d+)/", output).group(1)
        assert _answers(url)
        assert _wait_for(lambda: opened.exists() and opened.read_text()), "the browser was not started"
        assert datadir.holder(tmp_path / "data")["urls"] == [f"{url}/"]  # a second start can say where it runs
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=FALLBACK_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors[-3000:]
    assert "Stopping SigDesk." in rest
    assert "Traceback" not in errors
    assert opened.read_text() == f"{url}/"
    assert not _answers(url)
