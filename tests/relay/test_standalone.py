"""The relay runs on a small VPS without the CRM: `sigdesk relay ...` imports none of it, and it runs
in a virtualenv holding only packaging/relay/requirements.txt and SigDesk installed with --no-deps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.relay.processes import free_port, until

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "packaging" / "relay" / "requirements.txt"

# What the relay may load of SigDesk: its own package and the few shared modules with no CRM behind them.
ALLOWED_SIGDESK = (
    "sigdesk",
    "sigdesk.cli",
    "sigdesk.terminal",  # logging that progress bars survive, how unset values print: click only
    "sigdesk.features",  # the list of command groups, names only (Flask only for type checking)
    "sigdesk.config",
    "sigdesk.db",
    "sigdesk.errors",
    "sigdesk.batching",
    "sigdesk.prepared",
    "sigdesk.relay_client",
    "sigdesk.relay_client.cli",  # the desktop's `relay pair` command: click only until run
)
CRM_PACKAGES = (
    "flask",
    "flask_login",
    "flask_wtf",
    "flask_limiter",
    "werkzeug",
    "jinja2",
    "bcrypt",
    "pyotp",
    "qrcode",
    "webview",
    "cryptography",
    "httpx",
    "orjson",
    "filetype",
    "cheroot",
    "qtpy",
    "PySide6",
)

LOADED = """
import json, sys, tempfile
from sigdesk.cli import main

for args in (["relay", "--help"], ["relay", "serve", "--help"], ["relay", "add-install", "--help"],
             ["relay", "list-installs", "--db", "sqlite:///" + tempfile.mkdtemp() + "/relay.db"]):
    try:
        main(args, standalone_mode=False)
    except SystemExit:
        pass
from sigdesk.relay.server import create_relay_app
create_relay_app("sqlite:///" + tempfile.mkdtemp() + "/relay.db").store.close()
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_modules() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", LOADED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={key: value for key, value in os.environ.items() if not key.startswith("SIGDESK_")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_relay_commands_and_server_import_nothing_of_the_crm():
    modules = _loaded_modules()
    sigdesk = {name for name in modules if name == "sigdesk" or name.startswith("sigdesk.")}
    assert "sigdesk.relay.server" in sigdesk  # the check really ran the server's imports
    shared = {name for name in sigdesk if name != "sigdesk.relay" and not name.startswith("sigdesk.relay.")}
    assert shared <= set(ALLOWED_SIGDESK)
    assert not [name for name in modules if name.split(".")[0] in CRM_PACKAGES]


def test_the_relay_requirements_match_sigdesks_own_versions():
    declared = {line.strip() for line in (ROOT / "setup.cfg").read_text().splitlines()}
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    wanted = [line for line in lines if line and not line.startswith("#")]
    assert wanted and all(line in declared for line in wanted)


@pytest.fixture(scope="session")
def relay_venv(tmp_path_factory) -> Path:
    """A virtualenv with only the relay's requirements, and SigDesk (a copy of this tree) without its dependencies."""
    root = tmp_path_factory.mktemp("relay-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=300)
    source = root / "src"
    shutil.copytree(ROOT / "sigdesk", source / "sigdesk", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([*pip, "--no-deps", str(source)], check=True, timeout=300)
    return venv


def _venv_env(home: Path) -> dict[str, str]:
    keep = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SIGDESK_", "PYTHON", "VIRTUAL_ENV")) and "proxy" not in key.lower()
    }
    return {**keep, "HOME": str(home), "PYTHONUNBUFFERED": "1"}


def test_relay_serves_from_a_virtualenv_without_the_crms_dependencies(relay_venv, tmp_path):
    python, sigdesk = relay_venv / "bin" / "python", relay_venv / "bin" / "sigdesk"
    env = _venv_env(tmp_path)
    missing = subprocess.run([str(python), "-c", "import bcrypt"], capture_output=True, env=env, cwd=tmp_path)
    assert missing.returncode != 0  # the venv really lacks the CRM's dependencies
    for package in ("pyotp", "flask", "cryptography"):
        assert subprocess.run([str(python), "-c", f"import {package}"], capture_output=True, env=env).returncode != 0

    db = f"sqlite:///{tmp_path / 'relay.db'}"
    added = subprocess.run(
        [
            str(sigdesk),
            "--data-dir",
            str(tmp_path),
            "relay",
            "add-install",
            "--name",
            "Rosa",
            "--public-url",
            "https://relay.example.com",
            "--json",
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    install = json.loads(added.stdout)

    port = free_port()
    log = tmp_path / "relay.log"
    with open(log, "wb") as output:
        relay = subprocess.Popen(
            [
                str(sigdesk),
                "--data-dir",
                str(tmp_path),
                "relay",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                db,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy():
            assert relay.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=2, trust_env=False)
            except httpx.TransportError:
                return None

        health = until(healthy, 30, "the relay to answer /healthz", every=0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        hook = install["webhook_url"].replace("https://relay.example.com", base)
        handshake = httpx.get(
            hook,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": install["verify_token"],
                "hub.challenge": "1158201444",
            },
            timeout=5,
            trust_env=False,
        )
        assert handshake.status_code == 200 and handshake.text == "1158201444"
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            code = relay.wait(20)
        except subprocess.TimeoutExpired:
            relay.kill()
            raise
    assert code == 0, log.read_text()
    assert "Stopping the relay." in log.read_text()


def test_the_relays_migrations_ship_inside_its_package_and_in_the_desktop_bundle():
    import importlib.util

    from sigdesk.relay.schema import migrations_dir

    assert migrations_dir() == ROOT / "sigdesk" / "relay" / "migrations"
    spec = importlib.util.spec_from_file_location("sigdesk_packaging_bundle_relay", ROOT / "packaging" / "bundle.py")
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    targets = {Path(target) / Path(source).name for source, target in bundle.data_files()}
    assert Path("sigdesk/relay/migrations/env.py") in targets
    assert Path("sigdesk/relay/migrations/versions/0001_relay.py") in targets
