"""After an erasure, search merges its index (fts.compact). MariaDB: only the FULLTEXT indexes, in place, never a
copy of the tables (which blocks every write while it runs). SQLite: the write-ahead log is truncated, tried again
while a reader holds it up, and a warning says so when it cannot be."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sigdesk.actor import Actor
from sigdesk.contacts.commands import anonymise
from sigdesk.search import fts
from tests.contacts.test_erasure import ADA, SAID, checkpoint, erase, file_bytes, seed_words


def table_ids(engine: Engine) -> dict[str, int]:
    """InnoDB gives a table a new id whenever it copies it (OPTIMIZE TABLE, ALTER ... FORCE)."""
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
        rows = connection.exec_driver_sql(
            "SELECT NAME, TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME LIKE %s", (f"{schema}/%",)
        ).all()
    return {name: table_id for name, table_id in rows}


def indexed(engine: Engine, table: str, word: str) -> bool:
    """Whether the table's FULLTEXT index (its merged part or its cache) still holds the word."""
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
        connection.exec_driver_sql("SET GLOBAL innodb_ft_aux_table = %s", (f"{schema}/{table}",))
        try:
            return bool(
                connection.exec_driver_sql(
                    "SELECT (SELECT COUNT(*) FROM information_schema.INNODB_FT_INDEX_TABLE WHERE WORD = %s)"
                    " + (SELECT COUNT(*) FROM information_schema.INNODB_FT_INDEX_CACHE WHERE WORD = %s)",
                    (word, word),
                ).scalar_one()
            )
        finally:
            connection.exec_driver_sql("SET GLOBAL innodb_ft_aux_table = NULL")


@pytest.mark.database
def test_erasure_on_mariadb_merges_the_fulltext_indexes_without_copying_a_table(app):
    engine = app.extensions["sigdesk"].database.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("InnoDB's OPTIMIZE TABLE")
    contact_id = seed_words(app)
    before = table_ids(engine)
    assert indexed(engine, "messages", SAID.lower())

    erase(app, contact_id)

    assert table_ids(engine) == before
    assert not indexed(engine, "messages", SAID.lower())
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT @@GLOBAL.innodb_optimize_fulltext_only").scalar_one() == 0


def database_file(app) -> Path:
    return Path(app.extensions["sigdesk"].database.engine.url.database)


def reading(path: Path) -> sqlite3.Connection:
    """Another process's long read (an export, a backup): it keeps the WAL in use until it ends."""
    reader = sqlite3.connect(path, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM messages").fetchall()
    return reader


def anonymise_only(app, contact_id: int) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        anonymise(session, Actor.system("cli"), contact_id, state.config.data_dir)


def test_a_checkpoint_a_reader_holds_up_is_tried_again_then_a_warning_names_no_one(app, caplog):
    contact_id = seed_words(app)
    checkpoint(app)
    reader = reading(database_file(app))
    try:
        anonymise_only(app, contact_id)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="sigdesk.search.fts"):
            app.extensions["sigdesk"].worker.run_once()
        elapsed = time.monotonic() - started
    finally:
        reader.rollback()
        reader.close()
    warnings = [record.getMessage() for record in caplog.records if record.name == "sigdesk.search.fts"]
    assert len(warnings) == 1 and "could not be truncated" in warnings[0]
    assert SAID not in warnings[0] and ADA not in warnings[0] and str(contact_id) not in warnings[0]
    assert elapsed < 10  # a few short tries, not SQLite's 30 s busy timeout


def test_a_reader_that_ends_soon_leaves_no_erased_word_in_the_wal(app):
    contact_id = seed_words(app)
    checkpoint(app)
    path = database_file(app)
    reader = reading(path)
    anonymise_only(app, contact_id)
    done = threading.Timer(fts.CHECKPOINT_WAIT_MS / 1000 + 0.2, reader.rollback)
    done.start()
    try:
        app.extensions["sigdesk"].worker.run_once()
    finally:
        done.join()
        reader.close()
    assert SAID.encode() not in file_bytes(app)  # the file and its WAL
