"""The full-text index lives beside the models: backups and restores keep it in step, and it can be rebuilt."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from sigdesk.app import create_app
from sigdesk.backup import services as backups
from sigdesk.backup.format import KdfParams
from sigdesk.config import Config
from sigdesk.models import User
from sigdesk.search import fts
from sigdesk.search import services as search
from tests.backup.seed import seed
from tests.search.test_services import add_conversation

PASSPHRASE = "a long backup passphrase"


def owner_search(app, query: str):
    with app.extensions["sigdesk"].database.session(write=False) as session:
        owner = session.query(User).filter_by(role="owner").first()
        return search.search(session, owner, query)


def test_a_restored_backup_is_searchable_and_its_index_matches_the_rows(app, tmp_path):
    seed(app)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        add_conversation(session, "Restored Person", "4999", ["the parcel left the warehouse"])
    out = tmp_path / "office.sigdesk-backup"
    backups.create(state.database, state.config, PASSPHRASE, out, kdf=KdfParams(log2_n=4, r=1, p=1))
    backups.restore(out, PASSPHRASE, tmp_path / "restored")
    restored = create_app(
        Config(
            data_dir=tmp_path / "restored",
            database_url=f"sqlite:///{tmp_path / 'restored' / 'sigdesk.db'}",
            bcrypt_rounds=4,
            testing=True,
        )
    )
    try:
        assert [hit["contact_name"] for hit in owner_search(restored, "warehouse")["messages"]] == ["Restored Person"]
        assert [hit["name"] for hit in owner_search(restored, "restored")["contacts"]] == ["Restored Person"]
        with restored.extensions["sigdesk"].database.engine.begin() as connection:
            assert fts.integrity_ok(connection)
    finally:
        restored.extensions["sigdesk"].database.dispose()


def test_the_sqlite_index_tables_are_known_and_not_models(app):
    names = inspect(app.extensions["sigdesk"].database.engine).get_table_names()
    search_tables = [name for name in names if fts.is_search_table(name)]
    assert set(fts.SQLITE_FTS_TABLES) <= set(search_tables)
    assert not fts.is_search_table("messages") and not fts.is_search_table("contacts")


def test_a_rebuild_restores_an_index_that_lost_its_entries(app, auth):
    auth.setup_owner()
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        add_conversation(session, "Lost Index", "4988", ["findable words"])
    with state.database.engine.begin() as connection:
        for table in fts.SQLITE_FTS_TABLES:
            connection.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
    assert owner_search(app, "findable")["messages"] == []
    with state.database.engine.begin() as connection:
        fts.rebuild(connection)
        assert fts.integrity_ok(connection)
    assert len(owner_search(app, "findable")["messages"]) == 1


@pytest.mark.database
def test_existing_rows_are_indexed_when_the_migration_runs(app, auth):
    """Upgrading a database that already holds messages makes them searchable at once."""
    from alembic import command

    from sigdesk.db import alembic_config

    auth.setup_owner()
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        add_conversation(session, "Before Upgrade", "4977", ["written before search existed"])
    cfg = alembic_config(state.database, state.config.migrations_dir)
    command.downgrade(cfg, "0004")
    command.upgrade(cfg, "head")
    assert len(owner_search(app, "existed")["messages"]) == 1
    assert [hit["name"] for hit in owner_search(app, "upgrade")["contacts"]] == ["Before Upgrade"]


@pytest.mark.database
def test_migration_0009_indexes_what_was_stored_before_it(app, auth, monkeypatch):
    """Chinese words inside a sentence, contact-card names and file names stored before the upgrade are found after
    it, through the index (MariaDB's scan of the newest messages is switched off: see MySQLSearch)."""
    from alembic import command

    from sigdesk.db import alembic_config
    from sigdesk.search.services import MySQLSearch
    from tests import factories

    monkeypatch.setattr(MySQLSearch, "RECENT_WINDOW", 0)

    auth.setup_owner()
    state = app.extensions["sigdesk"]
    cfg = alembic_config(state.database, state.config.migrations_dir)
    # Stored through today's models, then taken back to before 0009 (which drops its index, keeping the rows).
    with state.database.session() as session:
        conversation = add_conversation(session, "Stored Earlier", "4966", ["我想订购两件红色的衬衫"])
        factories.message(session, conversation, type="document", filename="quote-7781.pdf", wamid="wamid.doc.4966")
        cards = {"contacts": {"cards": [{"name": {"formatted_name": "Dora Delivery"}}]}}
        factories.message(session, conversation, type="contacts", details=json.dumps(cards), wamid="wamid.card.4966")
    command.downgrade(cfg, "0008")
    command.upgrade(cfg, "head")
    assert len(owner_search(app, "红色的衬衫")["messages"]) == 1
    assert len(owner_search(app, "衬衫")["messages"]) == 1
    assert [hit["message"]["type"] for hit in owner_search(app, "quote 7781")["messages"]] == ["document"]
    assert [hit["message"]["type"] for hit in owner_search(app, "dora")["messages"]] == ["contacts"]
    with state.database.engine.begin() as connection:
        assert fts.integrity_ok(connection)


def test_migration_0009_tells_the_scripts_without_spaces_as_search_does():
    """The view and triggers (a copy in the migration) and the queries must agree on which rows the trigram index holds."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0009_search.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.UNSPACED_GLOB == fts.UNSPACED_GLOB and migration.CARDS == fts.CARDS
    assert migration._grams("我想订购 hi 東京") == fts.grams("我想订购 hi 東京")
