"""what the thread shows of sent messages

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import sigdesk.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "uploaded_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.String(length=128), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sigdesk.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_media")),
        sa.UniqueConstraint("media_id", name=op.f("uq_uploaded_media_media_id")),
        **OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("uploaded_media")
