"""whatsapp: contacts, conversations, messages, templates, webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:26:04.189305
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db
from sqlalchemy.dialects import mysql

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wa_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("profile_name", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("opted_out_marketing", sa.Boolean(), nullable=False),
        sa.Column("opted_out_changed_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("last_inbound_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("user_id", name=op.f("uq_contacts_user_id")),
        sa.UniqueConstraint("wa_id", name=op.f("uq_contacts_wa_id")),
        **MYSQL_TABLE,
    )
    op.create_table(
        "message_status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wamid", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("timestamp", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("recipient_id", sa.String(length=64), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("conversation", sa.Text(), nullable=True),
        sa.Column("pricing", sa.Text(), nullable=True),
        sa.Column("biz_opaque_callback_data", sa.Text(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_status_events")),
        sa.UniqueConstraint("wamid", "status", name="uq_message_status_events_wamid_status"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=32), nullable=False),
        sa.Column("meta_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("quality", sa.String(length=32), nullable=True),
        sa.Column(
            "components",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("rejected_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("name", "language", name="uq_templates_name_language"),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_templates_meta_id"), ["meta_id"], unique=False)

    op.create_table(
        "webhook_counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhook_counters")),
        **MYSQL_TABLE,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.Column(
            "raw",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mariadb").with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("processed_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_state"), ["state"], unique=False)

    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("waba_id", sa.String(length=64), nullable=True),
        sa.Column(
            "payload",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=False,
        ),
        sa.Column("occurred_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_account_events_delivery_id_webhook_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_events")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_account_events_fingerprint")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_events_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_events_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_account_events_field"), ["field"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("last_message_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("last_inbound_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("unread_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_conversations_assignee_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_conversations_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("contact_id", name=op.f("uq_conversations_contact_id")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index("ix_conversations_status_last_message_at", ["status", "last_message_at"], unique=False)

    op.create_table(
        "reactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_wamid", sa.String(length=255), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=True),
        sa.Column("wamid", sa.String(length=255), nullable=True),
        sa.Column("reacted_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_reactions_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reactions")),
        sa.UniqueConstraint("target_wamid", "contact_id", name="uq_reactions_target_wamid_contact_id"),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reactions_contact_id"), ["contact_id"], unique=False)

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wamid", sa.String(length=255), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column(
            "text",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("media_id", sa.String(length=128), nullable=True),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=128), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("media_state", sa.String(length=16), nullable=True),
        sa.Column(
            "details",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("reply_to_wamid", sa.String(length=255), nullable=True),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
        sa.Column("frequently_forwarded", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_title", sa.String(length=255), nullable=True),
        sa.Column("error_explanation", sa.Text(), nullable=True),
        sa.Column("timestamp", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("edited_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.Column(
            "raw",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("client_ref", sa.String(length=64), nullable=True),
        sa.Column(
            "payload",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mariadb").with_variant(mysql.MEDIUMTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sigdesk.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_messages_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_messages_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("client_ref", name=op.f("uq_messages_client_ref")),
        sa.UniqueConstraint("wamid", name=op.f("uq_messages_wamid")),
        **MYSQL_TABLE,
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index("ix_messages_conversation_id_timestamp", ["conversation_id", "timestamp"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_next_attempt_at"), ["next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_next_attempt_at"))
        batch_op.drop_index("ix_messages_conversation_id_timestamp")
        batch_op.drop_index(batch_op.f("ix_messages_contact_id"))
        batch_op.drop_index(batch_op.f("ix_messages_author_id"))

    op.drop_table("messages")
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reactions_contact_id"))

    op.drop_table("reactions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_status_last_message_at")
        batch_op.drop_index(batch_op.f("ix_conversations_assignee_id"))

    op.drop_table("conversations")
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_events_field"))
        batch_op.drop_index(batch_op.f("ix_account_events_delivery_id"))
        batch_op.drop_index(batch_op.f("ix_account_events_created_at"))

    op.drop_table("account_events")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_state"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_received_at"))

    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_counters")
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_templates_meta_id"))

    op.drop_table("templates")
    op.drop_table("message_status_events")
    op.drop_table("contacts")
