"""media queue index: the media fetcher finds pending downloads without scanning every message

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:00:00.000000
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_media_state_id", "messages", ["media_state", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_media_state_id", table_name="messages")
