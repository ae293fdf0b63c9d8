"""Alembic runs inside SigDesk: the app passes its engine in, so there is one database URL."""

from alembic import context

import sigdesk.models  # noqa: F401  (registers every table)
from sigdesk.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    context.run_migrations()
