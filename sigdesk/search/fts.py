"""What migration 0005 adds to the schema outside the models, for code that must know about it
(the migrations test, backup and restore), and the repair for a full-text index that drifted."""

from __future__ import annotations

from sqlalchemy import Connection, text

# SQLite: FTS5 tables over messages and contacts (external content, kept in sync by triggers).
SQLITE_FTS_TABLES = ("messages_fts", "contacts_fts")
SQLITE_TRIGGERS = (
    "messages_fts_insert",
    "messages_fts_delete",
    "messages_fts_update",
    "contacts_fts_insert",
    "contacts_fts_delete",
    "contacts_fts_update",
)
# MySQL/MariaDB: FULLTEXT indexes on the tables themselves.
MYSQL_FULLTEXT_INDEXES = ("ftx_messages_text_caption", "ftx_contacts_names")


def is_search_table(name: str) -> bool:
    """True for the FTS5 tables and their shadow tables (messages_fts_data, _idx, _docsize, _config)."""
    return any(name == table or name.startswith(table + "_") for table in SQLITE_FTS_TABLES)


def rebuild(connection: Connection) -> None:
    """Re-index from the rows themselves, e.g. after rows were loaded with the triggers missing.
    MySQL's FULLTEXT indexes are maintained by InnoDB and need nothing."""
    if connection.dialect.name != "sqlite":
        return
    for table in SQLITE_FTS_TABLES:
        connection.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def integrity_ok(connection: Connection) -> bool:
    if connection.dialect.name != "sqlite":
        return True
    try:
        for table in SQLITE_FTS_TABLES:
            connection.execute(text(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)"))
    except Exception:  # noqa: BLE001 - any failure means the index does not match the rows
        return False
    return True
