"""full-text search over messages and contacts

SQLite: FTS5 external-content tables kept in sync by triggers. MySQL/MariaDB: FULLTEXT indexes.
Neither is a SQLAlchemy model (see sigdesk/search/fts.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 11:30:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TOKENIZE = "tokenize = 'unicode61 remove_diacritics 2'"

# (table, its FTS table, the indexed columns)
INDEXED = (
    ("messages", "messages_fts", ("text", "caption")),
    ("contacts", "contacts_fts", ("display_name", "profile_name", "wa_id")),
)


def _sqlite_upgrade() -> None:
    for table, fts, columns in INDEXED:
        names = ", ".join(columns)
        new = ", ".join(f"new.{column}" for column in columns)
        old = ", ".join(f"old.{column}" for column in columns)
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{table}', content_rowid='id', {TOKENIZE})")
        op.execute(
            f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); END"
        )
        # only when an indexed column is written: status ticks update messages all the time
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {names} ON {table} BEGIN "
            f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.id, {old}); "
            f"INSERT INTO {fts}(rowid, {names}) VALUES (new.id, {new}); END"
        )
        op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def _sqlite_downgrade() -> None:
    for _table, fts, _columns in INDEXED:
        for action in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{action}")
        op.execute(f"DROP TABLE IF EXISTS {fts}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        op.execute("CREATE FULLTEXT INDEX ftx_messages_text_caption ON messages (text, caption)")
        op.execute("CREATE FULLTEXT INDEX ftx_contacts_names ON contacts (display_name, profile_name, wa_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_downgrade()
    else:
        op.execute("DROP INDEX ftx_contacts_names ON contacts")
        op.execute("DROP INDEX ftx_messages_text_caption ON messages")
        # drop InnoDB's hidden FTS_DOC_ID too: MariaDB 10.11 leaves rows out of a FULLTEXT index re-created over it
        op.execute("ALTER TABLE contacts FORCE")
        op.execute("ALTER TABLE messages FORCE")
