"""marketing consent as events with source and evidence

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:40:00.000000

The opt-outs and resumes recorded before (contacts.opted_out_marketing and its time) become the first
event of each such contact, with source 'legacy', so the history starts from what SigDesk knew.
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}
LEGACY_EVIDENCE = "Recorded before SigDesk kept a consent history (Meta's preference or error 131050)"


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("evidence", sa.String(length=1000), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_consent_events_contact_id_contacts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_consent_events_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_consent_events_actor_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_consent_events_message_id")),
        **OPTIONS,
    )
    op.create_index("ix_consent_events_contact_id_at_id", "consent_events", ["contact_id", "at", "id"], unique=False)
    op.create_index(op.f("ix_consent_events_actor_id"), "consent_events", ["actor_id"], unique=False)
    # A plain ADD COLUMN: a batch on SQLite would copy the table and lose its full-text triggers.
    op.add_column(
        "contacts", sa.Column("marketing_consent", sa.String(length=16), server_default="unknown", nullable=False)
    )
    op.create_index(op.f("ix_contacts_marketing_consent"), "contacts", ["marketing_consent"], unique=False)

    contacts = sa.table(
        "contacts",
        sa.column("id", sa.Integer()),
        sa.column("opted_out_marketing", sa.Boolean()),
        sa.column("opted_out_changed_at", sigdesk.db.UTCDateTime()),
        sa.column("created_at", sigdesk.db.UTCDateTime()),
        sa.column("marketing_consent", sa.String()),
    )
    events = sa.table(
        "consent_events",
        sa.column("contact_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("source", sa.String()),
        sa.column("evidence", sa.String()),
        sa.column("at", sigdesk.db.UTCDateTime()),
        sa.column("created_at", sigdesk.db.UTCDateTime()),
    )
    now = sigdesk.db.utcnow()
    c = contacts.c
    # A stop is known whenever the flag is set; a resume only when a time says someone spoke.
    for status, which in (
        ("opted_out", c.opted_out_marketing.is_(True)),
        ("opted_in", sa.and_(c.opted_out_marketing.is_(False), c.opted_out_changed_at.is_not(None))),
    ):
        op.execute(
            events.insert().from_select(
                ["contact_id", "status", "source", "evidence", "at", "created_at"],
                sa.select(
                    c.id,
                    sa.literal(status, sa.String()),
                    sa.literal("legacy", sa.String()),
                    sa.literal(LEGACY_EVIDENCE, sa.String()),
                    sa.func.coalesce(c.opted_out_changed_at, c.created_at),
                    sa.literal(now, sigdesk.db.UTCDateTime()),
                ).where(which),
            )
        )
        op.execute(contacts.update().where(which).values(marketing_consent=status))


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_marketing_consent"), table_name="contacts")
    op.drop_column("contacts", "marketing_consent")  # in place on SQLite 3.35+: the full-text triggers stay
    op.drop_table("consent_events")
