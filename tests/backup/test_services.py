"""Backups of a real seeded database, restored into new data dirs and databases and compared row by row."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sigdesk.app import create_app
from sigdesk.backup import services as backups
from sigdesk.backup.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    BackupError,
    DamagedBackup,
    KdfParams,
    NewerBackup,
    TruncatedBackup,
    WrongPassphrase,
)
from sigdesk import datadir
from sigdesk.config import Config
from sigdesk.db import Database
from sigdesk.models import Contact
from sigdesk.settings import services as settings
from tests import factories
from tests.backup.seed import MESSAGE_TYPES, SECRET, media_files, seed, snapshot

PASSPHRASE = "a long backup passphrase"
FAST = KdfParams(log2_n=4, r=1, p=1)
CHUNK = 16 * 1024


@pytest.fixture
def seeded(app):
    seed(app)
    return app


@pytest.fixture
def backup_file(seeded, tmp_path) -> Path:
    state = seeded.extensions["sigdesk"]
    out = tmp_path / "office.sigdesk-backup"
    backups.create(state.database, state.config, PASSPHRASE, out, kdf=FAST, chunk_size=CHUNK)
    return out


def restored_config(data_dir: Path, url: str | None = None) -> Config:
    return Config(
        data_dir=data_dir, database_url=url or f"sqlite:///{data_dir / 'sigdesk.db'}", bcrypt_rounds=4, testing=True
    )


def tree(folder: Path) -> dict[str, bytes]:
    """Every file and its bytes (the data-dir lock file is beside the folder, not in it)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.database
def test_backup_restores_into_a_new_data_dir_identical(seeded, backup_file, tmp_path):
    state = seeded.extensions["sigdesk"]
    target = tmp_path / "restored"
    progress = []
    manifest = backups.restore(backup_file, PASSPHRASE, target, progress=lambda *event: progress.append(event))

    restored = Database(f"sqlite:///{target / 'sigdesk.db'}")
    try:
        on_mysql = state.database.engine.url.get_backend_name() != "sqlite"
        assert snapshot(restored.engine, on_mysql) == snapshot(state.database.engine, on_mysql)
    finally:
        restored.dispose()
    assert media_files(target) == media_files(state.config.data_dir)
    assert len(media_files(target)) == 3 * 5
    assert (target / "data.key").read_bytes() == state.config.data_key_file.read_bytes()
    assert oct((target / "data.key").stat().st_mode & 0o777) == "0o600"
    assert manifest["tables"]["messages"]["rows"] == 3 * len(MESSAGE_TYPES)
    assert {phase for phase, _done, _total in progress} >= {"decrypt", "load"}
    assert not [p for p in tmp_path.iterdir() if ".restoring-" in p.name]


@pytest.mark.database
def test_restored_app_starts_decrypts_secrets_and_takes_new_rows(backup_file, tmp_path):
    target = tmp_path / "restored"
    backups.restore(backup_file, PASSPHRASE, target)
    app = create_app(restored_config(target))
    state = app.extensions["sigdesk"]
    try:
        with state.database.session() as session:
            assert settings.get(session, state.cipher, "whatsapp.access_token") == SECRET
            before = max(c.id for c in session.query(Contact))
            factories.contact(session, "447700900999")
            assert session.query(Contact).filter_by(wa_id="447700900999").one().id > before
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        state.database.dispose()


def test_verify_checks_everything_and_writes_nothing(backup_file, tmp_path):
    before = tree(tmp_path)
    manifest = backups.verify(backup_file, PASSPHRASE)
    assert manifest["format"] == FORMAT_VERSION
    assert manifest["alembic_revision"]
    assert manifest["media"]["files"] == 15
    assert set(manifest["members"]) >= {"data.key", "database/sigdesk.db"}
    assert manifest["database"] == "sqlite"
    assert manifest["tables"]["messages"]["rows"] == 3 * len(MESSAGE_TYPES)
    assert tree(tmp_path) == before


def test_backup_reveals_nothing_without_the_passphrase(backup_file):
    blob = backup_file.read_bytes()
    assert blob.startswith(MAGIC)
    for needle in (b"Customer", b"olive@example.com", b"wamid", b"sqlite", b"manifest"):
        assert needle not in blob


def test_backup_never_overwrites_an_existing_file(seeded, backup_file):
    state = seeded.extensions["sigdesk"]
    before = backup_file.read_bytes()
    with pytest.raises(BackupError, match="already exists"):
        backups.create(state.database, state.config, PASSPHRASE, backup_file, kdf=FAST)
    assert backup_file.read_bytes() == before


def damaged_copies(backup_file: Path, tmp_path: Path) -> dict[str, tuple[Path, type, str]]:
    blob = backup_file.read_bytes()
    cases = {}

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    newer = bytearray(blob)
    newer[len(MAGIC) : len(MAGIC) + 2] = (FORMAT_VERSION + 1).to_bytes(2, "big")
    cases["flipped"] = (write("flipped.bak", bytes(flipped)), DamagedBackup, "damaged")
    boundary = HEADER_SIZE + (CHUNK + 16) * 2
    assert len(blob) > boundary + CHUNK
    cases["truncated"] = (write("truncated.bak", blob[:boundary]), DamagedBackup, "truncated")
    cases["cut"] = (write("cut.bak", blob[:-100]), TruncatedBackup, "cut short")
    cases["newer"] = (write("newer.bak", bytes(newer)), NewerBackup, "newer SigDesk")
    cases["wrong"] = (backup_file, WrongPassphrase, "Wrong passphrase")
    return cases


@pytest.mark.parametrize("case", ["flipped", "truncated", "cut", "newer", "wrong"])
def test_bad_backups_are_refused_and_nothing_is_created(backup_file, tmp_path, case):
    path, error, message = damaged_copies(backup_file, tmp_path)[case]
    passphrase = "not the passphrase" if case == "wrong" else PASSPHRASE
    with pytest.raises(error, match=message):
        backups.verify(path, passphrase)
    listing = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message):
        backups.restore(path, passphrase, tmp_path / "restored")
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_in_place_restore_holds_the_lock_even_before_there_is_a_data_dir(backup_file, tmp_path):
    data_dir = tmp_path / "new-office"
    holders = []
    backups.restore_in_place(
        backup_file, PASSPHRASE, data_dir, progress=lambda *event: holders.append(datadir.holder(data_dir))
    )
    assert holders and all(found == {"pid": os.getpid(), "what": "sigdesk backup restore"} for found in holders)
    assert datadir.holder(data_dir) is None
    assert (data_dir / "sigdesk.db").is_file()


def test_in_place_restore_keeps_the_old_data_dir_and_swaps_only_when_done(seeded, backup_file, tmp_path):
    state = seeded.extensions["sigdesk"]
    data_dir = state.config.data_dir
    with state.database.session() as session:
        factories.contact(session, "made-after-backup")
    state.database.dispose()
    old = tree(data_dir)

    damaged = damaged_copies(backup_file, tmp_path)["flipped"][0]
    with pytest.raises(DamagedBackup):
        backups.restore_in_place(damaged, PASSPHRASE, data_dir)
    assert tree(data_dir) == old

    _manifest, previous = backups.restore_in_place(backup_file, PASSPHRASE, data_dir)
    assert previous is not None and previous.name.startswith("data.before-restore-")
    assert tree(previous) == old
    restored = Database(f"sqlite:///{data_dir / 'sigdesk.db'}")
    try:
        with restored.engine.connect() as connection:
            assert (
                connection.execute(text("SELECT count(*) FROM contacts WHERE wa_id = 'made-after-backup'")).scalar()
                == 0
            )
            assert connection.execute(text("SELECT count(*) FROM contacts")).scalar() == 3
    finally:
        restored.dispose()


def test_restore_refuses_a_folder_or_database_that_holds_data(seeded, backup_file, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        backups.restore(backup_file, PASSPHRASE, busy)
    assert tree(busy) == {"notes.txt": b"mine"}

    state = seeded.extensions["sigdesk"]
    with pytest.raises(BackupError, match="already"):
        backups.restore(backup_file, PASSPHRASE, tmp_path / "new", target_database_url=state.config.database_url)
    assert not (tmp_path / "new").exists()
    with state.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM contacts")).scalar() == 3


def test_backup_from_an_unknown_schema_revision_is_made_by_a_newer_sigdesk(seeded, tmp_path):
    state = seeded.extensions["sigdesk"]
    future = tmp_path / "future-migrations"
    shutil.copytree(state.config.migrations_dir, future, ignore=shutil.ignore_patterns("__pycache__"))
    head = backups._scripts(future).get_current_head()
    (future / "versions" / "9999_future.py").write_text(
        f"revision = '9999'\ndown_revision = '{head}'\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n    pass\n"
    )
    with state.database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    class FutureConfig(Config):
        migrations_dir = property(lambda self: future)

    out = tmp_path / "future.bak"
    backups.create(
        state.database, FutureConfig(state.config.data_dir, state.config.database_url), PASSPHRASE, out, kdf=FAST
    )
    with pytest.raises(NewerBackup, match="made by a newer SigDesk"):
        backups.restore(out, PASSPHRASE, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


@pytest.mark.skipif(not os.environ.get("SIGDESK_TEST_DATABASE_URL"), reason="needs SIGDESK_TEST_DATABASE_URL (MariaDB)")
def test_sqlite_to_mariadb_and_back_is_identical(seeded, backup_file, tmp_path, mysql_url):
    state = seeded.extensions["sigdesk"]
    assert state.database.engine.url.get_backend_name() == "sqlite"
    drop_everything(mysql_url)
    backups.restore(backup_file, PASSPHRASE, tmp_path / "on-maria", target_database_url=mysql_url)
    maria = Database(mysql_url)
    try:
        assert snapshot(maria.engine, seconds_only=True) == snapshot(state.database.engine, seconds_only=True)
        with maria.engine.connect() as connection:  # Chinese search works at once, not after a re-index
            images = connection.scalar(text("SELECT COUNT(*) FROM messages WHERE type = 'image'"))
            indexed = connection.scalar(text("SELECT COUNT(*) FROM message_grams"))
        assert images and indexed == images
        back = tmp_path / "from-maria.bak"
        config = restored_config(tmp_path / "on-maria", mysql_url)
        manifest = backups.create(maria, config, PASSPHRASE, back, kdf=FAST)
        assert manifest["source_backend"] == "mysql"
    finally:
        maria.dispose()
    backups.restore(back, PASSPHRASE, tmp_path / "again")
    again = Database(f"sqlite:///{tmp_path / 'again' / 'sigdesk.db'}")
    try:
        assert snapshot(again.engine, seconds_only=True) == snapshot(state.database.engine, seconds_only=True)
    finally:
        again.dispose()
    assert media_files(tmp_path / "again") == media_files(state.config.data_dir)
    app = create_app(restored_config(tmp_path / "again"))
    try:
        with app.extensions["sigdesk"].database.session() as session:
            assert settings.get(session, app.extensions["sigdesk"].cipher, "whatsapp.access_token") == SECRET
    finally:
        app.extensions["sigdesk"].database.dispose()
    drop_everything(mysql_url)


def drop_everything(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for (name,) in connection.execute(text("SHOW TABLES")).fetchall():
            connection.execute(text(f"DROP TABLE `{name}`"))
        connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()


FORMAT_1 = Path(__file__).parent / "data" / "format-1.sigdesk-backup"


def test_backup_in_format_1_still_verifies_restores_and_is_upgraded(tmp_path):
    """Made by SigDesk 0.1 at schema 0003, when the database went in as JSON Lines per table."""
    manifest = backups.verify(FORMAT_1, PASSPHRASE)
    assert manifest["format"] == 1 and manifest["alembic_revision"] == "0003"
    assert "database" not in manifest and "database/messages.jsonl" in manifest["members"]

    target = tmp_path / "restored"
    backups.restore(FORMAT_1, PASSPHRASE, target)
    assert len(media_files(target)) == 15
    app = create_app(restored_config(target))
    state = app.extensions["sigdesk"]
    try:
        assert (
            backups.current_revision(state.database.engine)
            == backups._scripts(state.config.migrations_dir).get_current_head()
        )
        with state.database.session() as session:
            assert settings.get(session, state.cipher, "whatsapp.access_token") == SECRET
            assert session.query(Contact).count() == 3
            assert session.execute(text("SELECT count(*) FROM messages")).scalar() == 3 * len(MESSAGE_TYPES)
    finally:
        state.database.dispose()


def test_sqlite_backup_holds_the_database_file_and_restores_it_byte_for_byte(seeded, backup_file, tmp_path):
    state = seeded.extensions["sigdesk"]
    manifest = backups.verify(backup_file, PASSPHRASE)
    assert manifest["database"] == "sqlite" and manifest["format"] == FORMAT_VERSION
    assert not [name for name in manifest["members"] if name.endswith(".jsonl")]
    target = tmp_path / "restored"
    backups.restore(backup_file, PASSPHRASE, target)
    restored = Database(f"sqlite:///{target / 'sigdesk.db'}")
    try:
        with restored.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert snapshot(restored.engine) == snapshot(state.database.engine)
    finally:
        restored.dispose()
    assert not list(state.config.data_dir.glob(".backup-*")), "the snapshot's temp folder is removed"


def rewrite_database_member(backup_file: Path, out: Path, damage) -> None:
    """Re-seal a backup whose database file was changed before sealing, with matching checksums:
    what a backup of an already-damaged database would look like."""
    from concurrent.futures import ThreadPoolExecutor
    import hashlib
    import io
    import json

    from sigdesk.backup.archive import ArchiveWriter, Pipeline, entries
    from sigdesk.backup.format import DecryptingReader, EncryptingWriter

    members = {}
    with open(backup_file, "rb") as handle:
        reader = DecryptingReader(handle, PASSPHRASE)
        for entry in entries(reader.chunks(), backups._member_name):
            members[entry.name] = entry.read_all()
    members["database/sigdesk.db"] = damage(bytearray(members["database/sigdesk.db"]))
    manifest = json.loads(members.pop("manifest.json"))
    blob = members["database/sigdesk.db"]
    manifest["members"]["database/sigdesk.db"] = {"size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    with open(out, "wb") as sink, ThreadPoolExecutor(1) as helper:
        writer = EncryptingWriter(sink, PASSPHRASE, FAST, chunk_size=CHUNK)
        archive = ArchiveWriter(writer, Pipeline(helper))
        for name, data in members.items():
            archive.add_file(name, io.BytesIO(bytes(data)), len(data), lambda _n: None)
        archive.add_bytes("manifest.json", json.dumps(manifest).encode())
        archive.close()
        writer.close()


def scramble_last_pages(blob: bytearray) -> bytes:
    page = int.from_bytes(blob[16:18], "big")
    for offset in range(len(blob) - 3 * page, len(blob), 7):
        blob[offset] ^= 0x5A
    return bytes(blob)


def test_database_file_that_sqlite_finds_damaged_is_refused_and_nothing_is_created(backup_file, tmp_path):
    damaged = tmp_path / "damaged.bak"
    rewrite_database_member(backup_file, damaged, scramble_last_pages)
    backups.verify(damaged, PASSPHRASE)  # the checksums match: only SQLite's own check can tell
    listing = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DamagedBackup, match="fails SQLite.s check"):
        backups.restore(damaged, PASSPHRASE, tmp_path / "restored")
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_database_file_with_other_row_counts_than_its_manifest_is_refused(backup_file, tmp_path):
    import sqlite3

    def drop_a_contact(blob: bytearray) -> bytes:
        path = tmp_path / "edit.db"
        path.write_bytes(bytes(blob))
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("DELETE FROM reactions WHERE id = (SELECT max(id) FROM reactions)")
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        data = path.read_bytes()
        path.unlink()
        return data

    edited = tmp_path / "edited.bak"
    rewrite_database_member(backup_file, edited, drop_a_contact)
    with pytest.raises(DamagedBackup, match="Table reactions: the backup lists 3 rows but 2 were restored"):
        backups.restore(edited, PASSPHRASE, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


@pytest.mark.skipif(not os.environ.get("SIGDESK_TEST_DATABASE_URL"), reason="needs SIGDESK_TEST_DATABASE_URL (MariaDB)")
def test_format_1_backup_restores_into_mariadb(tmp_path, mysql_url):
    drop_everything(mysql_url)
    backups.restore(FORMAT_1, PASSPHRASE, tmp_path / "on-maria", target_database_url=mysql_url)
    maria = Database(mysql_url)
    try:
        with maria.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 3 * len(MESSAGE_TYPES)
    finally:
        maria.dispose()
    drop_everything(mysql_url)


def test_restore_into_a_sqlite_file_elsewhere_writes_it_there_and_cleans_up_on_failure(seeded, backup_file, tmp_path):
    state = seeded.extensions["sigdesk"]
    elsewhere = tmp_path / "db-disk" / "office.db"
    elsewhere.parent.mkdir()
    url = f"sqlite:///{elsewhere}"

    damaged = damaged_copies(backup_file, tmp_path)["flipped"][0]
    with pytest.raises(DamagedBackup):
        backups.restore(damaged, PASSPHRASE, tmp_path / "restored", target_database_url=url)
    assert list(elsewhere.parent.iterdir()) == [] and not (tmp_path / "restored").exists()

    backups.restore(backup_file, PASSPHRASE, tmp_path / "restored", target_database_url=url)
    assert not (tmp_path / "restored" / "sigdesk.db").exists()
    restored = Database(url)
    try:
        assert snapshot(restored.engine) == snapshot(state.database.engine)
    finally:
        restored.dispose()
