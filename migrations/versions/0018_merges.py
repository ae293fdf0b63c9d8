"""merges (reserved slot: filled by the work on it)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 23:20:00.000000
"""

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
