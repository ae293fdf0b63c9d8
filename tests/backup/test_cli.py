"""`sigdesk backup`: the real command, real key derivation, a seeded SQLite data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from sigdesk.actor import Actor
from sigdesk.app import create_app
from sigdesk.backup import services as backups
from sigdesk.cli import main
from sigdesk.config import Config
from sigdesk.datadir import LOCK_SUFFIX
from sigdesk.db import Database
from sigdesk.settings import services as settings
from tests.backup.seed import SECRET, seed

PASSPHRASE = "a long backup passphrase\n"


@pytest.fixture
def data_dir(app, monkeypatch) -> Path:
    """A seeded data dir whose app is closed again, as when SigDesk is not running."""
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    seed(app, contacts=2)
    state = app.extensions["sigdesk"]
    state.database.dispose()
    return state.config.data_dir


def run(data_dir: Path, *args: str, input: str | None = PASSPHRASE):
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), "backup", *args], input=input)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file and its bytes, less data-dir lock files (an in-place restore leaves `data.lock` beside `data`)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(LOCK_SUFFIX)
    }


def contact_count(folder: Path) -> int:
    database = Database(f"sqlite:///{folder / 'sigdesk.db'}")
    try:
        with database.engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM contacts")).scalar_one()
    finally:
        database.dispose()


def test_create_verify_and_restore_into_a_new_folder(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    created = run(data_dir, "create", "--out", str(out), "--passphrase-stdin")
    assert created.exit_code == 0, created.output
    assert "Backup written to" in created.output and out.is_file()

    checked = run(data_dir, "verify", str(out), "--passphrase-stdin")
    assert checked.exit_code == 0, checked.output
    assert "Backup OK" in checked.output and "messages: 28 rows" in checked.output

    target = tmp_path / "elsewhere"
    restored = run(data_dir, "restore", str(out), "--into-data-dir", str(target), "--passphrase-stdin")
    assert restored.exit_code == 0, restored.output
    assert contact_count(target) == 2
    app = create_app(Config(data_dir=target, database_url=f"sqlite:///{target / 'sigdesk.db'}", testing=True))
    try:
        with app.extensions["sigdesk"].database.session() as session:
            assert settings.get(session, app.extensions["sigdesk"].cipher, "whatsapp.access_token") == SECRET
    finally:
        app.extensions["sigdesk"].database.dispose()


def test_in_place_restore_swaps_the_data_dir_and_keeps_the_old_one(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    database = Database(f"sqlite:///{data_dir / 'sigdesk.db'}")
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO contacts (wa_id, opted_out_marketing, created_at) VALUES ('new', 0, '2026-11-23 08:00:00')"
            )
        )
    database.dispose()

    result = run(data_dir, "restore", str(out), "--passphrase-stdin")
    assert result.exit_code == 0, result.output
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("data.before-restore-")]
    assert len(kept) == 1 and str(kept[0]) in result.output
    assert contact_count(data_dir) == 2
    assert contact_count(kept[0]) == 3


def test_wrong_passphrase_is_one_line_and_changes_nothing(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    before = tree(tmp_path)
    for args in (
        ["verify", str(out)],
        ["restore", str(out)],
        ["restore", str(out), "--into-data-dir", str(tmp_path / "x")],
    ):
        result = run(data_dir, *args, "--passphrase-stdin", input="guess guess guess\n")
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1] == "Error: Wrong passphrase for this backup"
        assert "Traceback" not in result.output
    assert tree(tmp_path) == before


def test_damaged_file_is_refused_with_the_data_dir_untouched(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    blob = bytearray(out.read_bytes())
    blob[-30] ^= 0xFF
    out.write_bytes(bytes(blob))
    before = tree(data_dir)
    result = run(data_dir, "restore", str(out), "--passphrase-stdin")
    assert result.exit_code == 1 and "damaged" in result.output
    assert tree(data_dir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", "data.lock", "office.sigdesk-backup"])


def test_cut_short_file_says_it_is_cut_short_not_damaged(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    out.write_bytes(out.read_bytes()[:-1000])
    for args in (["verify", str(out)], ["restore", str(out)]):
        result = run(data_dir, *args, "--passphrase-stdin")
        assert result.exit_code == 1
        assert "cut short" in result.output and "damaged" not in result.output


def test_create_refuses_a_short_or_empty_passphrase_and_writes_nothing(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    for passphrase in ("\n", "short\n"):
        result = run(data_dir, "create", "--out", str(out), "--passphrase-stdin", input=passphrase)
        assert result.exit_code == 1 and "passphrase" in result.output
    assert not out.exists()


def test_create_prompts_twice_for_the_passphrase(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    mismatch = run(data_dir, "create", "--out", str(out), input="first passphrase\nsecond passphrase\n")
    assert mismatch.exit_code != 0 and not out.exists()


def test_restore_into_a_folder_with_data_is_refused(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    result = run(data_dir, "restore", str(out), "--into-data-dir", str(data_dir), "--passphrase-stdin")
    assert result.exit_code == 1 and "not empty" in result.output


def test_in_place_restore_needs_a_target_database_when_not_on_sqlite(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    result = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(data_dir),
            "--database-url",
            "mysql+pymysql://u@127.0.0.1:9/x",
            "backup",
            "restore",
            str(out),
            "--passphrase-stdin",
        ],
        input=PASSPHRASE,
    )
    assert result.exit_code == 1 and "--into-database-url" in result.output


def test_create_refuses_a_guessable_passphrase_naming_the_backup_passphrase(data_dir, tmp_path):
    out = tmp_path / "weak.sigdesk-backup"
    short = run(data_dir, "create", "--out", str(out), "--passphrase-stdin", input="12345678\n")
    assert short.exit_code == 1 and "The backup passphrase must be at least 10 characters long" in short.output
    guessable = run(data_dir, "create", "--out", str(out), "--passphrase-stdin", input="1234567890\n")
    assert guessable.exit_code == 1 and "This backup passphrase is too easy to guess." in guessable.output
    assert not out.exists()


def test_restore_still_takes_the_weak_passphrase_an_older_backup_was_made_with(data_dir, tmp_path):
    out = tmp_path / "old.sigdesk-backup"
    config = Config(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sigdesk.db'}")
    database = Database(config.database_url)
    try:
        backups.run(database, config, Actor.system("cli"), "12345678", out)
    finally:
        database.dispose()
    assert run(data_dir, "verify", str(out), "--passphrase-stdin", input="12345678\n").exit_code == 0
    target = tmp_path / "restored"
    restored = run(
        data_dir, "restore", str(out), "--into-data-dir", str(target), "--passphrase-stdin", input="12345678\n"
    )
    assert restored.exit_code == 0, restored.output
    assert contact_count(target) == 2


def test_create_without_out_writes_into_the_backup_folder_and_prints_no_log_lines(data_dir, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    here = tmp_path / "here"
    here.mkdir()
    assert (
        CliRunner()
        .invoke(main, ["--data-dir", str(data_dir), "settings", "set", "backup.folder", str(folder)])
        .exit_code
        == 0
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGDESK_")}
    made = subprocess.run(
        [sys.executable, "-m", "sigdesk", "--data-dir", str(data_dir), "backup", "create", "--passphrase-stdin"],
        input=PASSPHRASE,
        capture_output=True,
        text=True,
        cwd=here,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    files = list(folder.glob("sigdesk-*.sigdesk-backup"))
    assert len(files) == 1 and list(here.iterdir()) == []
    assert made.stdout.strip().splitlines()[-1].startswith(f"Backup written to {files[0]} (the backup folder")
    assert " INFO " not in made.stderr and "backup written" not in made.stderr


def test_create_without_out_and_without_a_backup_folder_writes_here(data_dir, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    made = run(data_dir, "create", "--passphrase-stdin")
    assert made.exit_code == 0, made.output
    files = list(here.glob("sigdesk-*.sigdesk-backup"))
    assert len(files) == 1
    assert f"Backup written to {files[0]} (this folder;" in made.output


def test_a_database_password_given_to_restore_as_an_argument_is_warned_about_and_never_printed(data_dir, tmp_path):
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    target = "mysql+pymysql://sigdesk:hunter2hunter2@127.0.0.1:1/crm"  # nothing listens there: the restore fails
    typed = run(data_dir, "restore", str(out), "--into-data-dir", str(tmp_path / "new"), "--into-database-url", target)
    assert typed.exit_code == 1
    assert "the database password in --into-database-url was given on the command line" in typed.stderr
    assert "SIGDESK_INTO_DATABASE_URL" in typed.stderr and "hunter2" not in typed.output
    from_env = CliRunner().invoke(
        main,
        ["--data-dir", str(data_dir), "backup", "restore", str(out), "--into-data-dir", str(tmp_path / "new2")],
        input=PASSPHRASE,
        env={"SIGDESK_INTO_DATABASE_URL": target},
    )
    assert from_env.exit_code == 1 and "Warning" not in from_env.output and "hunter2" not in from_env.output


def test_after_a_restore_into_another_database_the_next_start_is_told_as_the_variable(data_dir, tmp_path):
    """The hint names SIGDESK_DATABASE_URL, not --database-url, which would put a password in the shell history."""
    out = tmp_path / "office.sigdesk-backup"
    assert run(data_dir, "create", "--out", str(out), "--passphrase-stdin").exit_code == 0
    target, url = tmp_path / "new", f"sqlite:///{tmp_path / 'elsewhere.db'}"
    restored = run(data_dir, "restore", str(out), "--into-data-dir", str(target), "--into-database-url", url)
    assert restored.exit_code == 0, restored.output
    assert restored.output.strip().splitlines()[-1] == (
        f"Restored into {target}. Start SigDesk with --data-dir {target} and SIGDESK_DATABASE_URL set to {url}."
    )
