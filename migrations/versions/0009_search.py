"""search tokenizer for Chinese and Japanese, contact cards and file names

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 20:30:00.000000
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
