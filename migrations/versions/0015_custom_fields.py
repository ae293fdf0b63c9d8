"""custom contact fields and their values

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 23:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "contact_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("pattern", sa.String(length=255), nullable=True),
        sa.Column("options", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_fields")),
        sa.UniqueConstraint("key", name="uq_contact_fields_key"),
        **OPTIONS,
    )
    op.create_table(
        "contact_field_values",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("field_id", sa.Integer(), nullable=False),
        sa.Column("text_value", sa.String(length=500), nullable=True),
        sa.Column("number_value", sa.Double(), nullable=True),
        sa.Column("date_value", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_field_values_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["contact_fields.id"],
            name=op.f("fk_contact_field_values_field_id_contact_fields"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "field_id", name=op.f("pk_contact_field_values")),
        **OPTIONS,
    )
    # contact_id ends each index so a filter or count on a value reads the index alone (SQLite's indexes
    # hold the rowid, not the primary key; InnoDB's hold the key anyway, so it costs nothing there).
    with op.batch_alter_table("contact_field_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_field_values_field_text", ["field_id", "text_value", "contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_field_values_field_number", ["field_id", "number_value", "contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_field_values_field_date", ["field_id", "date_value", "contact_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("contact_field_values")
    op.drop_table("contact_fields")
