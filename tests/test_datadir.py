"""The data-dir lock, with a real `sigdesk serve` process on loopback: one SigDesk per data dir, and
no restore under a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from sigdesk import datadir
from sigdesk.cli import main
from tests.relay.processes import ROOT, Desktop, _environment, free_port

PASSPHRASE = "a long backup passphrase\n"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals to stop the server")


def run(data_dir: Path, *args: str, input: str | None = PASSPHRASE):
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args], input=input)


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    desktop = Desktop(tmp_path, "office")
    desktop.process.start()
    yield desktop
    desktop.process.stop()


def test_restore_is_refused_while_sigdesk_serve_runs_naming_its_pid(server, tmp_path):
    backup = tmp_path / "office.sigdesk-backup"
    created = run(server.data_dir, "backup", "create", "--out", str(backup), "--passphrase-stdin")
    assert created.exit_code == 0, created.output
    before = sorted(p.name for p in tmp_path.iterdir())

    refused = run(server.data_dir, "backup", "restore", str(backup), "--passphrase-stdin")

    assert refused.exit_code == 1
    message = refused.output
    assert f"SigDesk is already running at {server.url}/ (pid {server.process.pid}, sigdesk serve)" in message
    assert "To run sigdesk backup restore instead, stop it first" in message and "Traceback" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing renamed, nothing left beside it
    assert httpx.get(f"{server.url}/healthz", timeout=5, trust_env=False).status_code == 200

    server.process.stop()
    restored = run(server.data_dir, "backup", "restore", str(backup), "--passphrase-stdin")
    assert restored.exit_code == 0, restored.output
    assert "previous data is kept" in restored.output


def test_a_second_server_on_the_same_data_dir_is_refused_saying_where_sigdesk_already_runs(server):
    port = free_port()
    second = subprocess.run(
        [sys.executable, "-m", "sigdesk", "--data-dir", str(server.data_dir), "serve", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    assert f"SigDesk is already running at {server.url}/ (pid {server.process.pid}, sigdesk serve)" in second.stderr
    assert f"kill {server.process.pid}" in second.stderr
    assert httpx.get(f"{server.url}/healthz", timeout=5, trust_env=False).status_code == 200


@pytest.mark.parametrize(
    "command",
    [["serve", "--host", "127.0.0.1"], ["serve", "--https", "--host", "127.0.0.1"], ["desktop"]],
    ids=["serve", "serve --https", "desktop"],
)
def test_a_second_sigdesk_is_refused_before_it_touches_the_data_dir(server, command):
    """create_app clears export leftovers, migrates and may make the data key: the running server's
    download being written must survive a second start."""
    in_progress = server.data_dir / "exports" / "contacts-being-written.csv"
    in_progress.parent.mkdir(mode=0o700, exist_ok=True)
    in_progress.write_bytes(b"id,name\n")
    files_before = sorted(p.relative_to(server.data_dir) for p in server.data_dir.rglob("*"))
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    second = subprocess.run(
        [sys.executable, "-m", "sigdesk", "--data-dir", str(server.data_dir), *command, *port],
        cwd=ROOT,
        env=_environment({"DISPLAY": "", "WAYLAND_DISPLAY": ""}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"already running at {server.url}/ (pid {server.process.pid}, sigdesk serve)" in second.stderr
    assert in_progress.read_bytes() == b"id,name\n"
    after = {p.relative_to(server.data_dir) for p in server.data_dir.rglob("*")}
    assert set(files_before) <= after
    # only what the running server itself writes in the background may have appeared meanwhile
    assert {p.name for p in after - set(files_before)} <= {"broadcasts.journal", "sigdesk.db-wal", "sigdesk.db-shm"}
    assert httpx.get(f"{server.url}/healthz", timeout=5, trust_env=False).status_code == 200


def test_the_lock_file_is_beside_the_data_dir_so_a_restore_can_rename_the_folder(server):
    assert datadir.lock_file(server.data_dir) == server.data_dir.with_name("office.lock")
    assert datadir.holder(server.data_dir) == {
        "pid": server.process.pid,
        "what": "sigdesk serve",
        "urls": [f"{server.url}/"],
    }
    assert not any(p.name.endswith(".lock") for p in server.data_dir.rglob("*"))


def test_the_lock_ends_with_the_process_however_it_ends(server, tmp_path):
    backup = tmp_path / "office.sigdesk-backup"
    assert run(server.data_dir, "backup", "create", "--out", str(backup), "--passphrase-stdin").exit_code == 0
    server.process.kill()  # SIGKILL: no clean-up ran, the lock file is still there
    assert datadir.lock_file(server.data_dir).exists()
    restored = run(server.data_dir, "backup", "restore", str(backup), "--passphrase-stdin")
    assert restored.exit_code == 0, restored.output


def test_restore_holds_the_lock_against_a_server_starting_meanwhile(tmp_path):
    data_dir = tmp_path / "office"
    with datadir.hold(data_dir, "sigdesk backup restore"):
        started = subprocess.run(
            [sys.executable, "-m", "sigdesk", "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1"]
            + ["--port", str(free_port())],
            cwd=ROOT,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert started.returncode == 1
    assert f"in use by sigdesk backup restore (process {os.getpid()})" in started.stderr
    assert not data_dir.exists()  # refused before create_app: nothing migrated or created in the folder
    with datadir.hold(data_dir, "sigdesk serve"):
        assert datadir.holder(data_dir) == {"pid": os.getpid(), "what": "sigdesk serve"}
    assert datadir.holder(data_dir) is None
