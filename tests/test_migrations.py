import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sigdesk.db import Base, alembic_config
from sigdesk.search.fts import MYSQL_FULLTEXT_INDEXES


def test_migrations_have_a_single_head(app, config):
    database = app.extensions["sigdesk"].database
    script = ScriptDirectory.from_config(alembic_config(database, config.migrations_dir))
    assert len(script.get_heads()) == 1


@pytest.mark.database
def test_models_match_the_migrations(app):
    engine = app.extensions["sigdesk"].database.engine
    with engine.connect() as connection:
        # the relay's tables may share the test database; they have their own migrations
        # (and full-text search lives outside the models: FTS5 tables on SQLite, FULLTEXT indexes on MySQL)
        ours = {
            "include_name": lambda name, kind, _parent: (
                (kind != "table" or name in Base.metadata.tables)
                and not (kind == "index" and name in MYSQL_FULLTEXT_INDEXES)
            )
        }
        context = MigrationContext.configure(connection, opts={"compare_type": True, **ours})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


@pytest.mark.database
def test_starting_twice_keeps_data(app, config, auth):
    from sigdesk.app import create_app

    auth.setup_owner()
    again = create_app(config)
    with again.extensions["sigdesk"].database.session() as session:
        from sigdesk.auth.services import user_count

        assert user_count(session) == 1
    again.extensions["sigdesk"].database.dispose()


def test_an_allow_list_written_while_loopback_was_implicit_keeps_loopback_after_the_upgrade(tmp_path, config):
    """Loopback used to be allowed whatever the list said; the upgrade writes it into lists that
    relied on that, so `sigdesk serve` on 127.0.0.1 keeps working until the owner takes it out."""
    import sqlalchemy as sa
    from alembic import command

    from sigdesk.db import Database

    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrations = alembic_config(database, config.migrations_dir)
    command.upgrade(migrations, "0007")
    with database.engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO settings (key, value, is_secret, updated_at) VALUES (:key, :value, 0, :at)"),
            {"key": "server.allowed_networks", "value": "192.168.1.0/24,::1", "at": "2026-01-01 00:00:00"},
        )
    command.upgrade(migrations, "0008")
    with database.engine.connect() as connection:
        value = connection.execute(sa.text("SELECT value FROM settings WHERE key = 'server.allowed_networks'")).scalar()
    assert value == "127.0.0.0/8,192.168.1.0/24,::1"
    database.engine.dispose()
