"""The relay's own Alembic environment: separate tables, separate version table, same engine handling."""

from alembic import context

from sigdesk.relay.models import RelayBase

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=RelayBase.metadata,
        render_as_batch=True,
        compare_type=True,
        version_table="relay_alembic_version",
    )
    context.run_migrations()
