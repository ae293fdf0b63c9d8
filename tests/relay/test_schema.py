import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from sigdesk.db import Base, alembic_config
from sigdesk.relay import installs
from sigdesk.relay.models import RelayBase
from sigdesk.relay.schema import VERSION_TABLE, migrations_dir, open_relay_database


def test_relay_migrations_have_a_single_head(relay_store):
    script = ScriptDirectory.from_config(alembic_config(relay_store.database, migrations_dir()))
    assert len(script.get_heads()) == 1


@pytest.mark.database
def test_relay_models_match_the_relay_migrations(relay_store):
    with relay_store.engine.connect() as connection:
        ours = {"include_name": lambda name, kind, _parent: kind != "table" or name in RelayBase.metadata.tables}
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": VERSION_TABLE, **ours}
        )
        assert compare_metadata(context, RelayBase.metadata) == []
        assert VERSION_TABLE in inspect(connection).get_table_names()


def test_relay_tables_are_not_part_of_the_crm_schema():
    assert not set(RelayBase.metadata.tables) & set(Base.metadata.tables)


@pytest.mark.database
def test_reopening_the_relay_database_upgrades_in_place_and_keeps_installs(relay_db_url):
    database = open_relay_database(relay_db_url)
    with database.session() as session:
        installs.create_install(session, "Kept")
    database.dispose()
    again = open_relay_database(relay_db_url)
    with again.session() as session:
        assert [install.name for install in installs.list_installs(session)] == ["Kept"]
    again.dispose()
