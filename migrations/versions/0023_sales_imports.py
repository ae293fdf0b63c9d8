"""product and order imports

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import sigdesk.db  # noqa: F401

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="contacts", nullable=False))
        batch_op.add_column(sa.Column("options", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("lines", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("contacts_created", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("removed", sa.Integer(), server_default="0", nullable=False))

    op.create_table(
        "import_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.Boolean(), nullable=False),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["import_jobs.id"], name=op.f("fk_import_records_job_id_import_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_records")),
        **OPTIONS,
    )
    with op.batch_alter_table("import_records", schema=None) as batch_op:
        batch_op.create_index("ix_import_records_job_id_id", ["job_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("import_records")
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_column("removed")
        batch_op.drop_column("contacts_created")
        batch_op.drop_column("lines")
        batch_op.drop_column("options")
        batch_op.drop_column("kind")
