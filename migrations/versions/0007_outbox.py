"""event outbox: domain events in commit order for background consumers; audit entries say how an action came in

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        **OPTIONS,
    )
    op.create_table(
        "outbox_cursors",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_outbox_cursors")),
        **OPTIONS,
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("channel")
    op.drop_table("outbox_cursors")
    op.drop_table("outbox_events")
