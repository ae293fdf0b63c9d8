"""The Linux installer end to end: build the bundle and the .deb, install it, run the installed
`sigdesk serve` and `sigdesk desktop` (under Xvfb), then uninstall. Takes minutes and needs root,
so it runs only with SIGDESK_PACKAGING_TESTS=1 (packaging/test-deb.sh). Prints the figures for
packaging/README.md as one JSON line: build time, sizes, cold starts.

SIGDESK_PACKAGING_DIST=DIR reuses a dist/ that packaging/build.sh already made (skips the build).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ENABLE_ENV = "SIGDESK_PACKAGING_TESTS"
INSTALL_DIR = Path("/opt/sigdesk")
COMMAND = Path("/usr/bin/sigdesk")
DESKTOP_ENTRY = Path("/usr/share/applications/sigdesk.desktop")
ICON = Path("/usr/share/icons/hicolor/256x256/apps/sigdesk.png")
PASSWORD = "packaged-owner-password"
START_TIMEOUT = 60
WINDOW_TIMEOUT = 90


def _unavailable() -> str | None:
    if os.environ.get(ENABLE_ENV) != "1":
        return f"builds and installs a .deb (minutes, as root): set {ENABLE_ENV}=1 or run packaging/test-deb.sh"
    if not shutil.which("dpkg-deb"):
        return "dpkg-deb is not installed (Debian/Ubuntu only)"
    if os.geteuid() != 0:
        return "installing the .deb needs root"
    if not shutil.which("xvfb-run"):
        return "xvfb-run is not installed (apt-get install xvfb)"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=_unavailable() or "")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _du_mb(path: Path) -> float:
    return (
        int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])
        / 1e6
    )


def _tree(path: Path) -> set[str]:
    return {str(item.relative_to(path)) for item in path.rglob("*")}


def _environment(home: Path, **changes: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SIGDESK_", "QT_", "QTWEBENGINE_"))
        and key not in ("DISPLAY", "WAYLAND_DISPLAY", "PYTHONPATH")
    }
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"), **changes)
    return env


def _stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> tuple[str, str]:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            return process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.communicate()


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _dpkg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dpkg", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """dist/ with the bundle and the .deb, and how long making it took."""
    reuse = os.environ.get("SIGDESK_PACKAGING_DIST")
    if reuse:
        return {"dist": Path(reuse), "build_seconds": None}
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "packaging/build.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, SIGDESK_DIST=str(dist), SIGDESK_WORK=str(tmp_path_factory.mktemp("work"))),
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return {"dist": dist, "build_seconds": round(time.monotonic() - started, 1), "log": result.stdout}


@pytest.fixture(scope="module")
def installed(built) -> dict:
    debs = sorted(built["dist"].glob("sigdesk_*.deb"))
    assert debs, f"no .deb in {built['dist']}"
    _dpkg("--purge", "sigdesk")
    result = _dpkg("-i", str(debs[-1]))
    assert result.returncode == 0, result.stdout + result.stderr
    yield {"deb": debs[-1], **built}
    _dpkg("--purge", "sigdesk")


def test_installed_package_serves_sets_up_opens_its_window_and_uninstalls_keeping_data(installed, tmp_path):
    figures: dict = {
        "build_seconds": installed["build_seconds"],
        "bundle_mb": round(_du_mb(installed["dist"] / "sigdesk"), 1),
        "deb_mb": round(installed["deb"].stat().st_size / 1e6, 1),
        "build_steps": [
            line
            for line in installed.get("log", "").splitlines()
            if line.split(":")[0] in ("bundle", "deb", "tarball", "total")
        ],
    }

    # what the package put where
    assert (INSTALL_DIR / "sigdesk").is_file() and os.access(INSTALL_DIR / "sigdesk", os.X_OK)
    assert COMMAND.is_file() and os.access(COMMAND, os.X_OK)
    entry = DESKTOP_ENTRY.read_text()
    assert "Exec=sigdesk desktop" in entry and "Icon=sigdesk" in entry
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(DESKTOP_ENTRY)]).returncode == 0
    assert ICON.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figures["installed_mb"] = round(_du_mb(INSTALL_DIR), 1)
    figures["installed_size_field_kb"] = int(
        subprocess.run(
            ["dpkg-query", "-W", "-f", "${Installed-Size}", "sigdesk"], capture_output=True, text=True, check=True
        ).stdout
    )
    ldd = subprocess.run(
        ["ldd", str(INSTALL_DIR / "_internal/PySide6/Qt/lib/libQt6WebEngineCore.so.6")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "not found" not in ldd, ldd
    install_tree = _tree(INSTALL_DIR)

    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "data"
    assert subprocess.run(
        ["sigdesk", "--version"], capture_output=True, text=True, env=_environment(home)
    ).stdout.startswith("sigdesk, version")

    # the installed server: cold start to the first 200 from /healthz, then first-run setup over HTTP
    port = _free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        ["sigdesk", "--data-dir", str(data), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
            while True:
                assert server.poll() is None, server.communicate()[1][-3000:]
                assert time.monotonic() - started < START_TIMEOUT, "the server did not answer in time"
                try:
                    health = client.get("/healthz")
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            figures["serve_cold_start_to_200_s"] = round(time.monotonic() - started, 2)
            assert health.json()["status"] == "ok"

            assert client.get("/").headers["location"].endswith("/setup")
            setup = client.get("/setup")
            assert setup.status_code == 200 and "Welcome to SigDesk" in setup.text
            created = client.post(
                "/setup",
                data={
                    "csrf_token": _csrf(setup.text),
                    "email": "owner@example.com",
                    "name": "Packaged Owner",
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                },
            )
            assert created.status_code == 302 and created.headers["location"].endswith("/welcome/")
            wizard = client.get("/welcome/welcome")
            assert wizard.status_code == 200 and "Your owner account is ready" in wizard.text
            assert client.post("/welcome/skip", data={"csrf_token": _csrf(wizard.text)}).status_code == 302
            home_page = client.get("/")
            assert home_page.status_code == 200 and "Packaged Owner" in home_page.text
            assert client.get("/static/css/app.css").status_code == 200
    finally:
        out, errors = _stop(server)
    assert server.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert (data / "sigdesk.db").is_file() and (data / "data.key").is_file()

    # the installed window under Xvfb: cold start to Qt WebEngine showing the login page
    devtools = _free_port()
    display_file = tmp_path / "display"
    started = time.monotonic()
    window = subprocess.Popen(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "sh",
            "-c",
            f'echo "$DISPLAY $XAUTHORITY" > {display_file}; exec sigdesk --data-dir {data} desktop',
        ],
        env=_environment(home, QTWEBENGINE_REMOTE_DEBUGGING=f"127.0.0.1:{devtools}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    shown = None
    try:
        with httpx.Client(trust_env=False, timeout=5) as client:
            while shown is None:
                assert window.poll() is None, window.communicate()[1][-3000:]
                assert time.monotonic() - started < WINDOW_TIMEOUT, "the window did not show the login page in time"
                try:
                    pages = client.get(f"http://127.0.0.1:{devtools}/json/list").json()
                except (httpx.TransportError, ValueError):
                    pages = []
                shown = next(
                    (
                        page
                        for page in pages
                        if re.fullmatch(r"http://127\.0\.0\.1:\d+/login(\?.*)?", page.get("url", ""))
                        and page.get("title", "").startswith("Sign in")
                    ),
                    None,
                )
                if shown is None:
                    time.sleep(0.05)
        figures["desktop_cold_start_to_login_page_s"] = round(time.monotonic() - started, 2)
        assert "SigDesk" in shown["title"]
        display, xauthority = display_file.read_text().split()
        windows = subprocess.run(
            ["xwininfo", "-root", "-tree"],
            capture_output=True,
            text=True,
            env=dict(os.environ, DISPLAY=display, XAUTHORITY=xauthority),
        ).stdout
        assert '"SigDesk"' in windows, "no top-level window titled SigDesk on the display"
    finally:
        _stop(window, signal.SIGTERM)

    assert _tree(INSTALL_DIR) == install_tree, "SigDesk wrote into its install folder"

    # without --data-dir the data goes to the per-user data dir
    upgrade = subprocess.run(["sigdesk", "db", "upgrade"], capture_output=True, text=True, env=_environment(home))
    assert upgrade.returncode == 0, upgrade.stderr
    assert (home / ".local/share/SigDesk/sigdesk.db").is_file()

    # an upgrade (the package installed again over itself) keeps the data; the next start migrates it
    result = _dpkg("-i", str(installed["deb"]))
    assert result.returncode == 0, result.stderr
    again = subprocess.run(
        ["sigdesk", "--data-dir", str(data), "settings", "get", "onboarding.step"],
        capture_output=True,
        text=True,
        env=_environment(home),
    )
    assert again.returncode == 0 and again.stdout.strip() == "done", again.stderr

    # removing the package removes the program, never the users' data; nor does purging
    assert _dpkg("-r", "sigdesk").returncode == 0
    assert not COMMAND.exists() and not DESKTOP_ENTRY.exists()
    leftovers = sorted(str(path) for path in INSTALL_DIR.rglob("*")) if INSTALL_DIR.exists() else []
    assert not INSTALL_DIR.exists(), f"files dpkg does not own were left in {INSTALL_DIR}: {leftovers[:10]}"
    assert (data / "sigdesk.db").is_file() and (home / ".local/share/SigDesk/sigdesk.db").is_file()
    purge = _dpkg("--purge", "sigdesk")
    assert purge.returncode == 0 and (data / "sigdesk.db").is_file()

    print("\nPACKAGING FIGURES " + json.dumps(figures))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts/packaging-figures.json").write_text(json.dumps(figures, indent=2) + "\n")
