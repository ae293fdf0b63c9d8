"""the contact record: standard fields, E.164 phone, owner, message times

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00.000000

Plain ADD COLUMNs, in place. A batch on SQLite would copy the table: the copy loses the contacts'
full-text triggers, and dropping the old table with foreign keys on cascades into conversations. So
owner_id has no foreign key (SQLite adds one only by copying): users are deactivated, never deleted,
and the commands check the owner.
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}

TIMES = ("updated_at", "first_inbound_at", "first_outbound_at", "last_outbound_at")


def upgrade() -> None:
    op.add_column("contacts", sa.Column("email", sa.String(length=254), nullable=True))
    op.add_column("contacts", sa.Column("company", sa.String(length=255), nullable=True))
    op.add_column("contacts", sa.Column("city", sa.String(length=255), nullable=True))
    op.add_column("contacts", sa.Column("country", sa.String(length=2), nullable=True))
    op.add_column("contacts", sa.Column("language", sa.String(length=35), nullable=True))
    op.add_column("contacts", sa.Column("notes", sa.Text(), nullable=True))
    op.add_column("contacts", sa.Column("owner_id", sa.Integer(), nullable=True))
    for name in TIMES:
        op.add_column("contacts", sa.Column(name, sigdesk.db.UTCDateTime(), nullable=True))
    op.create_index(op.f("ix_contacts_email"), "contacts", ["email"], unique=False)
    op.create_index(op.f("ix_contacts_owner_id"), "contacts", ["owner_id"], unique=False)
    op.create_index(op.f("ix_contacts_created_at"), "contacts", ["created_at"], unique=False)
    # Filled from what is stored: the times of their messages; the record was last changed when made.
    op.execute("UPDATE contacts SET updated_at = created_at")
    op.execute(
        "UPDATE contacts SET first_inbound_at = (SELECT MIN(m.timestamp) FROM messages m "
        "WHERE m.contact_id = contacts.id AND m.direction = 'in'), "
        "first_outbound_at = (SELECT MIN(m.timestamp) FROM messages m "
        "WHERE m.contact_id = contacts.id AND m.direction = 'out'), "
        "last_outbound_at = (SELECT MAX(m.timestamp) FROM messages m "
        "WHERE m.contact_id = contacts.id AND m.direction = 'out')"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_created_at"), table_name="contacts")
    op.drop_index(op.f("ix_contacts_owner_id"), table_name="contacts")
    op.drop_index(op.f("ix_contacts_email"), table_name="contacts")
    # SQLite (3.35+) drops a column in place too, so the triggers stay.
    for name in reversed(("email", "company", "city", "country", "language", "notes", "owner_id", *TIMES)):
        op.drop_column("contacts", name)
