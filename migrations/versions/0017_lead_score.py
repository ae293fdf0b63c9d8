"""lead score: the rules, and each contact's score with its reasons

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:20:00.000000

The contacts' columns are plain ADD COLUMNs, in place (as in 0012): a batch on SQLite would copy the
table and lose its full-text triggers. With no rules yet every contact scores 0 with no reasons.
replied_within_day_at is filled from the stored messages: the first inbound message that came within
24 hours after an outbound one in the same conversation.
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "lead_score_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("argument", sa.String(length=255), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_score_rules")),
        **OPTIONS,
    )
    op.add_column("contacts", sa.Column("lead_score", sa.Integer(), nullable=True))
    op.add_column("contacts", sa.Column("lead_score_reasons", sa.Text(), nullable=True))
    op.add_column("contacts", sa.Column("replied_within_day_at", sigdesk.db.UTCDateTime(), nullable=True))
    op.create_index(op.f("ix_contacts_lead_score"), "contacts", ["lead_score"], unique=False)
    op.execute("UPDATE contacts SET lead_score = 0, lead_score_reasons = '[]'")
    if op.get_bind().dialect.name == "sqlite":
        within = "julianday(i.timestamp) - julianday(o.timestamp) <= 1"
    else:
        within = "o.timestamp >= i.timestamp - INTERVAL 1 DAY"
    op.execute(
        "UPDATE contacts SET replied_within_day_at = (SELECT MIN(i.timestamp) FROM messages i "
        "JOIN messages o ON o.conversation_id = i.conversation_id AND o.direction = 'out' "
        f"AND o.timestamp <= i.timestamp AND {within} "
        "WHERE i.contact_id = contacts.id AND i.direction = 'in')"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_lead_score"), table_name="contacts")
    # SQLite (3.35+) drops a column in place too, so the triggers stay.
    for name in ("replied_within_day_at", "lead_score_reasons", "lead_score"):
        op.drop_column("contacts", name)
    op.drop_table("lead_score_rules")
