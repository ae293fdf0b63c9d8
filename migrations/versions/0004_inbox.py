"""inbox: notes, labels, canned responses, snooze, list and thread indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("color", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("name", name="uq_labels_name"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shortcut", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_canned_responses_created_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint("shortcut", name="uq_canned_responses_shortcut"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_notes_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_notes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_author_id"), ["author_id"], unique=False)
        batch_op.create_index("ix_notes_conversation_id_created_at", ["conversation_id", "created_at"], unique=False)

    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_conversation_labels_label_id_labels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("conversation_id", "label_id", name=op.f("pk_conversation_labels")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_labels_label_id_conversation_id", ["label_id", "conversation_id"], unique=False
        )

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snoozed_until", sigdesk.db.UTCDateTime(), nullable=True))
        batch_op.create_index("ix_conversations_last_message_at", ["last_message_at"], unique=False)
        batch_op.create_index(
            "ix_conversations_assignee_id_status_last_message_at",
            ["assignee_id", "status", "last_message_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_conversations_unread_count_assignee_id", ["unread_count", "assignee_id"], unique=False
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_conversation_id_id", ["conversation_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_conversation_id_id")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_unread_count_assignee_id")
        batch_op.drop_index("ix_conversations_assignee_id_status_last_message_at")
        batch_op.drop_index("ix_conversations_last_message_at")
        batch_op.drop_column("snoozed_until")

    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_labels_label_id_conversation_id")

    op.drop_table("conversation_labels")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index("ix_notes_conversation_id_created_at")
        batch_op.drop_index(batch_op.f("ix_notes_author_id"))

    op.drop_table("notes")
    op.drop_table("canned_responses")
    op.drop_table("labels")
