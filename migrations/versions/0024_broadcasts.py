"""broadcasts

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 05:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import sigdesk.db  # noqa: F401
from sigdesk.db import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}
BIG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=255), nullable=False),
        sa.Column("template_language", sa.String(length=32), nullable=False),
        sa.Column("template_category", sa.String(length=32), nullable=True),
        sa.Column("variables", sa.Text(), nullable=True),
        sa.Column("audience", BIG_TEXT, nullable=True),
        sa.Column("rate_per_second", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=True),
        sa.Column("pause_kind", sa.String(length=16), nullable=True),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("resume_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_broadcasts_template_id_templates"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_broadcasts_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        **OPTIONS,
    )
    op.create_index("ix_broadcasts_status_scheduled_at", "broadcasts", ["status", "scheduled_at"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("wa_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        sa.Column("replied_at", UTCDateTime(), nullable=True),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_broadcast_recipients_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_recipients")),
        sa.UniqueConstraint("broadcast_id", "wa_id", name="uq_broadcast_recipients_broadcast_id_wa_id"),
        **OPTIONS,
    )
    op.create_index(
        "ix_broadcast_recipients_broadcast_id_state_id", "broadcast_recipients", ["broadcast_id", "state", "id"]
    )
    op.create_index("ix_broadcast_recipients_contact_id_sent_at", "broadcast_recipients", ["contact_id", "sent_at"])
    op.create_index("ix_broadcast_recipients_message_id", "broadcast_recipients", ["message_id"])
    # A plain ADD COLUMN (no foreign key), so SQLite does not copy the messages table.
    op.add_column("messages", sa.Column("broadcast_id", sa.Integer(), nullable=True))
    op.create_index("ix_messages_broadcast_id", "messages", ["broadcast_id"])
    op.create_index("ix_messages_contact_id_error_code", "messages", ["contact_id", "error_code"])


def downgrade() -> None:
    op.drop_index("ix_messages_contact_id_error_code", table_name="messages")
    op.drop_index("ix_messages_broadcast_id", table_name="messages")
    # Not batch mode: copying the messages table would break the search view of migration 0009.
    op.drop_column("messages", "broadcast_id")
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
