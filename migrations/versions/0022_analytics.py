"""analytics rollups

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

MYSQL = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "analytics_daily",
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "day", "dimension", name=op.f("pk_analytics_daily")),
        **MYSQL,
    )
    op.create_table(
        "analytics_episodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("first_response_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("resolved_on", sa.Date(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["users.id"], name=op.f("fk_analytics_episodes_agent_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_analytics_episodes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_episodes")),
        **MYSQL,
    )
    with op.batch_alter_table("analytics_episodes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_episodes_conversation_id_resolved_at", ["conversation_id", "resolved_at"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_episodes_started", ["started_on", "agent_id", "first_response_seconds"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_episodes_resolved", ["resolved_on", "agent_id", "resolution_seconds"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_episodes_agent_started", ["agent_id", "started_on", "first_response_seconds"], unique=False
        )
        batch_op.create_index(
            "ix_analytics_episodes_agent_resolved", ["agent_id", "resolved_on", "resolution_seconds"], unique=False
        )
    op.create_table(
        "analytics_state",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_analytics_state")),
        **MYSQL,
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_analytics",
            ["ordered_on", "status", "currency", "total_minor", "contact_id", "created_by"],
            unique=False,
        )


def downgrade() -> None:
    """Dropping the tables drops their indexes (MySQL refuses to drop the last index its foreign key uses)."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_analytics")
    op.drop_table("analytics_state")
    op.drop_table("analytics_episodes")
    op.drop_table("analytics_daily")
