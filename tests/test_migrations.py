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
